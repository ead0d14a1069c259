"""The entry point of every HTTP request: route lookup, context, chain, response, bookkeeping."""

from __future__ import annotations

import logging
from collections.abc import Callable
from time import monotonic
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.http import HttpVersion11

from kairos_core.context import RequestBodyTooLarge, RequestContext
from kairos_core.forwarding import TrustedProxies, client_address, request_id, upstream_headers
from kairos_core.proxy import body_error_response
from kairos_core.response import Response, closing, error_response
from kairos_core.router import RouteMatch, normalize_path
from kairos_core.server.framing import framing_refusal
from kairos_core.server.lean_request import IncomingRequest
from kairos_core.server.writer import send_response, sent_stand_in
from kairos_core.telemetry.observer import CLIENT_CLOSED, RequestObserver
from kairos_core.telemetry.tracing import next_traceparent

if TYPE_CHECKING:
    from kairos_core.runtime import Runtime

log = logging.getLogger("kairos.server")

_MAX_CONTENT_LENGTH = 2**63 - 1


class HttpSettings:
    """Per-configuration values the entry point needs on every request, resolved once."""

    __slots__ = (
        "compression",
        "consumer_header",
        "id_header",
        "in_flight",
        "observer",
        "sample_every",
        "server_header",
        "tracing",
        "trusted",
    )

    def __init__(self, runtime: Runtime, observer: RequestObserver) -> None:
        server = runtime.config.server
        observability = runtime.config.observability
        self.trusted = TrustedProxies(server.trusted_proxies)
        self.id_header = server.request_id_header
        self.server_header = server.server_header
        self.compression = server.compression
        self.consumer_header = server.consumer_header
        self.tracing = observability.tracing.enabled
        self.observer = observer
        core = observer.core
        self.in_flight = core.in_flight if core is not None else None
        self.sample_every = observability.metrics.stage_sampling if core is not None else 0


class HttpEntry:
    """Serves one HTTP listener; reads the current runtime afresh for each request."""

    def __init__(self, current: Callable[[], tuple[Runtime, HttpSettings]], scheme: str) -> None:
        self._current = current
        self._scheme = scheme
        self._count = 0

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        """Handle one request aiohttp's server parsed (see `serve`)."""
        message = request._message  # two attribute reads decide whether checks are needed
        refusal = None
        if message.version is not HttpVersion11 or message.chunked:
            refusal = framing_refusal(message)
        out = await self.serve(request, refusal)
        return sent_stand_in(out) if isinstance(out, bool) else out

    async def serve(
        self, request: IncomingRequest, refusal: tuple[int, str, str] | None = None
    ) -> bool | web.StreamResponse:
        """Handle one request end to end; returns whether the connection may be kept alive."""
        runtime, settings = self._current()
        runtime.in_flight += 1
        started = monotonic()
        in_flight = settings.in_flight
        if in_flight is not None:
            in_flight.value += 1
        incoming = request.headers
        rid = request_id(incoming.get(settings.id_header))
        peer: str = request.protocol.client_peer  # type: ignore[union-attr]
        ctx: RequestContext | None = None
        response: Response | None = None
        status, sent = CLIENT_CLOSED, 0
        try:
            if refusal is not None:
                response = closing(error_response(*refusal, rid), request)
                status, sent, out = await self._reply(request, settings, response, rid)
                return out
            path, _, query = request.raw_path.partition("?")
            norm = normalize_path(path)
            if norm is None:
                if path.startswith("/"):
                    response = error_response(400, "invalid_path", "invalid request path", rid)
                else:  # absolute-form, authority-form or `*`: this is not a forward proxy
                    response = closing(
                        error_response(
                            400, "invalid_target", "the request target must be a path", rid
                        ),
                        request,
                    )
                status, sent, out = await self._reply(request, settings, response, rid)
                return out
            host_header = incoming.get("Host", "")
            found = runtime.router.match(request.method, _hostname(host_header), norm, incoming)
            if not isinstance(found, RouteMatch):
                response = _unrouted(request.method, found, rid)
                status, sent, out = await self._reply(request, settings, response, rid)
                return out
            route = found.target
            trusted_peer = bool(settings.trusted) and peer in settings.trusted
            scheme = self._scheme
            if trusted_peer:
                client_ip = client_address(peer, incoming, settings.trusted)
                scheme = incoming.get("X-Forwarded-Proto", scheme).split(",")[0].strip() or scheme
            else:
                client_ip = peer
            headers = upstream_headers(incoming, peer, self._scheme, host_header, trusted_peer)
            headers[settings.id_header] = rid
            if settings.consumer_header and settings.consumer_header in headers:
                del headers[
                    settings.consumer_header
                ]  # only the gateway may say who the consumer is
            ctx = RequestContext(
                request,
                route,
                found.params,
                rid,
                client_ip,
                scheme,
                host_header,
                route.upstream_path(norm, found.params, found.matched_prefix),
                query,
                headers,
                started,
            )
            if settings.tracing:
                ctx.trace_id, ctx.span_id, headers["traceparent"], ctx.parent_span_id = (
                    next_traceparent(incoming.get("traceparent"))
                )
            response = await self._run(ctx, settings, request)
            status, sent, out = await self._reply(
                request, settings, response, rid, route.compression
            )
            return out
        finally:
            if ctx is not None and ctx.has_cleanups:
                await ctx.run_cleanups()
            runtime.in_flight -= 1
            if in_flight is not None:
                in_flight.value -= 1
            client = ctx.client_ip if ctx is not None else peer
            settings.observer.finish(request, ctx, response, status, sent, started, rid, client)

    async def _run(
        self, ctx: RequestContext, settings: HttpSettings, request: IncomingRequest
    ) -> Response:
        route = ctx.route
        length = request.content_length
        if length is not None and length > route.max_body_size:
            if length > _MAX_CONTENT_LENGTH:  # llhttp refuses these itself; the Python parser not
                return closing(
                    error_response(400, "bad_framing", "invalid Content-Length", ctx.request_id),
                    request,
                )
            return body_error_response(RequestBodyTooLarge(length), ctx)
        if request.headers.get("Expect", "").lower() == "100-continue":
            ctx.expect_continue = True
        handler = route.handler
        if settings.sample_every:
            self._count += 1
            if self._count >= settings.sample_every:
                self._count = 0
                handler = route.timed_handler or handler
        try:
            return await handler(ctx)
        except RequestBodyTooLarge as exc:
            return body_error_response(exc, ctx)
        except Exception:
            log.exception(
                "route %s: request %s failed inside the gateway", route.name, ctx.request_id
            )
            if request.writer.output_size:
                raise  # a response has started: aiohttp drops the connection instead of a 500
            if route.stats is not None:
                route.stats.internal_errors.value += 1
            return error_response(500, "internal_error", "internal gateway error", ctx.request_id)

    @staticmethod
    async def _reply(
        request: IncomingRequest,
        settings: HttpSettings,
        response: Response,
        rid: str,
        compress: bool = False,
    ) -> tuple[int, int, bool | web.StreamResponse]:
        headers = response.headers
        headers[settings.id_header] = rid
        if "Server" not in headers:
            headers["Server"] = settings.server_header
        out, sent = await send_response(
            request, response, settings.compression if compress else None
        )
        return response.status, sent, out


def _unrouted(method: str, allowed: frozenset[str], rid: str) -> Response:
    """404 when nothing matches the path, 405 (with Allow) when only the method is wrong."""
    if allowed:
        response = error_response(405, "method_not_allowed", f"{method} is not allowed here", rid)
        response.headers["Allow"] = ", ".join(sorted(allowed))
        return response
    return error_response(404, "route_not_found", "no route matches this request", rid)


def _hostname(host_header: str) -> str:
    """The Host header's name part, lower-cased, without the port."""
    if not host_header:
        return ""
    if host_header.startswith("["):
        return host_header[1 : host_header.find("]")].lower()
    name, _, _ = host_header.partition(":")
    return name.lower()
