"""The entry point of every HTTP request: route lookup, context, chain, response."""

from __future__ import annotations

import logging
from collections.abc import Callable
from time import monotonic
from typing import TYPE_CHECKING

from aiohttp import web

from kairos_core.context import RequestBodyTooLarge, RequestContext
from kairos_core.forwarding import TrustedProxies, client_address, request_id, upstream_headers
from kairos_core.proxy import body_error_response
from kairos_core.response import Response, error_response
from kairos_core.router import RouteMatch, normalize_path
from kairos_core.server.writer import send_response

if TYPE_CHECKING:
    from kairos_core.runtime import Runtime

log = logging.getLogger("kairos.server")


class HttpSettings:
    """Per-configuration values the entry point needs on every request, resolved once."""

    __slots__ = ("compression", "consumer_header", "id_header", "server_header", "trusted")

    def __init__(self, runtime: Runtime) -> None:
        server = runtime.config.server
        self.trusted = TrustedProxies(server.trusted_proxies)
        self.id_header = server.request_id_header
        self.server_header = server.server_header
        self.compression = server.compression
        self.consumer_header = server.consumer_header


class HttpEntry:
    """Serves one HTTP listener; reads the current runtime afresh for each request."""

    def __init__(self, current: Callable[[], tuple[Runtime, HttpSettings]], scheme: str) -> None:
        self._current = current
        self._scheme = scheme

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        """Handle one request end to end."""
        runtime, settings = self._current()
        started = monotonic()
        incoming = request.headers
        rid = request_id(incoming.get(settings.id_header))
        path, _, query = request.raw_path.partition("?")
        norm = normalize_path(path)
        if norm is None:
            return await self._reply(
                request,
                settings,
                error_response(400, "invalid_path", "invalid request path", rid),
                rid,
            )
        host_header = incoming.get("Host", "")
        found = runtime.router.match(request.method, _hostname(host_header), norm, incoming)
        if not isinstance(found, RouteMatch):
            if found:
                response = error_response(
                    405, "method_not_allowed", f"{request.method} is not allowed here", rid
                )
                response.headers["Allow"] = ", ".join(sorted(found))
            else:
                response = error_response(
                    404, "route_not_found", "no route matches this request", rid
                )
            return await self._reply(request, settings, response, rid)
        route = found.target
        peer: str = request.protocol.client_peer  # type: ignore[attr-defined]
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
            del headers[settings.consumer_header]  # only the gateway may say who the consumer is
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
        length = request.content_length
        if length is not None and length > route.max_body_size:
            return await self._reply(
                request, settings, body_error_response(RequestBodyTooLarge(length), ctx), rid
            )
        if request.headers.get("Expect", "").lower() == "100-continue":
            ctx.expect_continue = True
        try:
            response = await route.handler(ctx)
        except RequestBodyTooLarge as exc:
            response = body_error_response(exc, ctx)
        except Exception:
            log.exception("route %s: request %s failed inside the gateway", route.name, rid)
            response = error_response(500, "internal_error", "internal gateway error", rid)
        try:
            return await self._reply(request, settings, response, rid, route.compression)
        finally:
            await ctx.run_cleanups()

    @staticmethod
    async def _reply(
        request: web.BaseRequest,
        settings: HttpSettings,
        response: Response,
        rid: str,
        compress: bool = False,
    ) -> web.StreamResponse:
        headers = response.headers
        headers[settings.id_header] = rid
        if "Server" not in headers:
            headers["Server"] = settings.server_header
        return await send_response(request, response, settings.compression if compress else None)


def _hostname(host_header: str) -> str:
    """The Host header's name part, lower-cased, without the port."""
    if not host_header:
        return ""
    if host_header.startswith("["):
        return host_header[1 : host_header.find("]")].lower()
    name, _, _ = host_header.partition(":")
    return name.lower()
