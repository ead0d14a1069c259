"""The entry point of every HTTP request: route lookup, context, chain, response, bookkeeping."""

from __future__ import annotations

import logging
from collections.abc import Callable
from time import monotonic
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.hdrs import EXPECT, HOST, SERVER
from aiohttp.http import HttpVersion11
from multidict import istr

from kairos_core.body_stream import RequestBodyTooLarge
from kairos_core.context import RequestContext
from kairos_core.forwarding import RequestHeaderRules, TrustedProxies, client_address, request_id
from kairos_core.proxy import body_error_response
from kairos_core.response import Response, closing, error_response
from kairos_core.router import RouteMatch, normalize_path
from kairos_core.server.framing import framing_refusal
from kairos_core.server.lean_request import IncomingRequest
from kairos_core.server.writer import send_response, sent_stand_in
from kairos_core.telemetry.observer import CLIENT_CLOSED, RequestObserver
from kairos_core.telemetry.tracing import TRACEPARENT, next_traceparent

if TYPE_CHECKING:
    from kairos_core.runtime import Runtime

log = logging.getLogger("kairos.server")

_MAX_CONTENT_LENGTH = 2**63 - 1


class HttpSettings:
    """Per-configuration values the entry point needs on every request, resolved once."""

    __slots__ = (
        "compression",
        "consumer_header",
        "header_rules",
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
        self.trusted = TrustedProxies(server.trusted_proxies) or None
        """The proxies allowed to say who the client is (None when there are none)."""
        self.id_header = istr(server.request_id_header)
        self.server_header = server.server_header
        self.compression = server.compression
        self.consumer_header = istr(server.consumer_header) if server.consumer_header else None
        self.tracing = observability.tracing.enabled
        active = observer.core is not None or observer.access is not None
        self.observer = observer if active else None
        """Who records finished requests; None when metrics and the access log are both off."""
        core = observer.core
        self.in_flight = core.in_flight if core is not None else None
        self.sample_every = observability.metrics.stage_sampling if core is not None else 0
        self.header_rules = {
            scheme: RequestHeaderRules(self.trusted, scheme, self.id_header, self.consumer_header)
            for scheme in ("http", "https")
        }
        """The upstream header rules of an `http` and of an `https` listener."""


class HttpEntry:
    """Serves one HTTP listener; reads the current runtime afresh for each request."""

    def __init__(self, current: Callable[[], tuple[Runtime, HttpSettings]], scheme: str) -> None:
        self._current = current
        self._scheme = scheme
        self._count = 0

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        """Handle one request aiohttp's server parsed (see `serve`)."""
        # two attribute reads decide whether checks are needed; read through Any: aiohttp's C
        # parser makes an object that is not the NamedTuple its stubs declare (mypyc checks)
        raw: Any = request
        message = raw._message
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
        rid = request_id(request.headers.get(settings.id_header))
        ctx: RequestContext | None = None
        response: Response | None = None
        status, sent = CLIENT_CLOSED, 0
        out: bool | web.StreamResponse = False
        failure: BaseException | None = None
        try:
            routed = self._route(request, runtime, settings, rid, started, refusal)
            compression = None
            if isinstance(routed, Response):
                response = routed
            else:
                ctx = routed
                response = self._refuse_body(ctx, request)
                if response is None:
                    response = await self._run(ctx, settings, request)
                if ctx.route.compression:
                    compression = settings.compression
            headers = response.headers
            headers[settings.id_header] = rid
            if SERVER not in headers:
                headers[SERVER] = settings.server_header
            out, sent = await send_response(request, response, compression)
            status = response.status
        except BaseException as exc:  # not `finally` + `await`: see "Compiled hot path"
            failure = exc
        if ctx is not None and ctx.has_cleanups:
            await ctx.run_cleanups()
        runtime.in_flight -= 1
        if in_flight is not None:
            in_flight.value -= 1
        observer = settings.observer
        if observer is not None:
            client = ctx.client_ip if ctx is not None else request.protocol.client_peer  # type: ignore[union-attr]
            observer.finish(request, ctx, response, status, sent, started, rid, client)
        if failure is not None:
            raise failure
        return out

    def _route(
        self,
        request: IncomingRequest,
        runtime: Runtime,
        settings: HttpSettings,
        rid: str,
        started: float,
        refusal: tuple[int, str, str] | None,
    ) -> RequestContext | Response:
        """The request's context on its route, or the answer when it has none (or is refused)."""
        if refusal is not None:
            return closing(error_response(*refusal, rid), request)
        path, _, query = request.raw_path.partition("?")
        norm = normalize_path(path)
        if norm is None:
            if path.startswith("/"):
                return error_response(400, "invalid_path", "invalid request path", rid)
            # absolute-form, authority-form or `*`: this is not a forward proxy
            return closing(
                error_response(400, "invalid_target", "the request target must be a path", rid),
                request,
            )
        incoming = request.headers
        host_header = incoming.get(HOST, "")
        found = runtime.router.match(request.method, _hostname(host_header), norm, incoming)
        if not isinstance(found, RouteMatch):
            return _unrouted(request.method, found, rid)
        route = found.target
        peer: str = request.protocol.client_peer  # type: ignore[union-attr]
        scheme = self._scheme
        trusted = settings.trusted
        if trusted is not None and peer in trusted:
            client_ip = client_address(peer, incoming, trusted)
            scheme = incoming.get("X-Forwarded-Proto", scheme).split(",")[0].strip() or scheme
        else:
            client_ip = peer
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
            None,
            started,
            settings.header_rules[self._scheme],
        )
        if settings.tracing:
            ctx.trace_id, ctx.span_id, ctx.traceparent, ctx.parent_span_id = next_traceparent(
                incoming.get(TRACEPARENT)
            )
        return ctx

    @staticmethod
    def _refuse_body(ctx: RequestContext, request: IncomingRequest) -> Response | None:
        """The answer to a declared body the route cannot take; notes `Expect: 100-continue`."""
        length = request.content_length
        if length is not None and length > ctx.route.max_body_size:
            if length > _MAX_CONTENT_LENGTH:  # llhttp refuses these itself; the Python parser not
                return closing(
                    error_response(400, "bad_framing", "invalid Content-Length", ctx.request_id),
                    request,
                )
            return body_error_response(RequestBodyTooLarge(length), ctx)
        if request.headers.get(EXPECT, "").lower() == "100-continue":
            ctx.expect_continue = True
        return None

    async def _run(
        self, ctx: RequestContext, settings: HttpSettings, request: IncomingRequest
    ) -> Response:
        """The route's chain (with each stage timed for a sampled request); a failure inside
        the gateway becomes a 500 while no response has started."""
        route = ctx.route
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
