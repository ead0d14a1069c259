"""The `doh` stage: DNS over HTTPS (RFC 8484) answered on its route through the DNS resolver."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import TYPE_CHECKING

from multidict import CIMultiDict

from kairos_core import (
    BuildContext,
    Handler,
    RequestBodyTooLarge,
    RequestContext,
    Response,
    error_response,
)
from kairos_dns.config import DnsListenerConfig, DohConfig
from kairos_dns.listener import listener_key
from kairos_dns.resolver import DnsResolver
from kairos_dns.state import DnsState
from kairos_dns.wire import Malformed, parse_query, walk

if TYPE_CHECKING:
    from kairos_core.config.models import RouteConfig

MEDIA_TYPE = "application/dns-message"
MAX_MESSAGE = 65535


class DohStage:
    """Answers GET `?dns=` and POST `application/dns-message` itself; never calls the proxy."""

    def __init__(self, resolver: DnsResolver, state: DnsState) -> None:
        self.resolver = resolver
        self.metrics = state.metrics

    async def __call__(self, ctx: RequestContext, call_next: Handler) -> Response:
        """One DoH request."""
        method = ctx.method
        if method == "GET":
            value = ctx.request.query.get("dns")
            if not value:
                return error_response(400, "doh", "missing `dns` query parameter", ctx.request_id)
            try:
                data = base64.b64decode(value + "=" * (-len(value) % 4), b"-_", validate=True)
            except (binascii.Error, ValueError):
                return error_response(
                    400, "doh", "`dns` is not base64url (RFC 4648) data", ctx.request_id
                )
        elif method == "POST":
            content_type = ctx.request.headers.get("Content-Type", "")
            if content_type.partition(";")[0].strip().lower() != MEDIA_TYPE:
                return error_response(
                    415, "doh", f"POST a body of type {MEDIA_TYPE}", ctx.request_id
                )
            try:
                data = await ctx.read_body()
            except RequestBodyTooLarge:
                data = b"\x00" * (MAX_MESSAGE + 1)
        else:
            response = error_response(405, "doh", "use GET or POST", ctx.request_id)
            response.headers["Allow"] = "GET, POST"
            return response
        if len(data) > MAX_MESSAGE:
            return error_response(
                413, "doh", "a DNS message is at most 65535 bytes", ctx.request_id
            )
        try:
            query = parse_query(data)
        except Malformed as exc:
            self.metrics.malformed["doh"].inc()
            return error_response(400, "doh", f"not a DNS query: {exc}", ctx.request_id)
        resolver = self.resolver
        answer = resolver.cached(query, "doh") or await resolver.resolve(query, data, "doh")
        self.metrics.answered("doh", query.qtype, answer)
        headers: CIMultiDict[str] = CIMultiDict()
        headers["Content-Type"] = MEDIA_TYPE
        headers["Cache-Control"] = f"max-age={_freshness(answer)}"
        return Response(200, headers, answer)


def _freshness(answer: bytes) -> int:
    """Seconds an HTTP cache may keep this answer: its smallest TTL (RFC 8484 section 5.1)."""
    try:
        layout = walk(answer)
    except Malformed:
        return 0
    if layout.truncated or layout.rcode not in (0, 3):
        return 0
    return layout.min_ttl


def build_doh(config: DohConfig, context: BuildContext, clock: Callable[[], float]) -> DohStage:
    """Find or create the resolver this route answers through."""
    services = context.services
    state = DnsState.of(services, clock)
    if config.listener is not None:
        for listener in services.config.listeners:
            if listener.protocol == "dns" and listener.name == config.listener:
                key = listener_key(listener)
                shared = DnsListenerConfig.model_validate(listener.config)
                return DohStage(state.resolver(key, shared), state)
        raise ValueError(f"listener: no `dns` listener is named {config.listener!r}")
    settings = config
    if not config.zones:
        pool = _route_pool(context)
        if pool is None:
            raise ValueError("zones: give zones (or `listener`) when doh is not on a route")
        settings = config.model_copy(update={"zones": {".": pool}})
    key = f"doh:{context.route_name or 'global'}:{context.consumer_name or ''}"
    return DohStage(state.resolver(key, settings), state)


def _route_pool(context: BuildContext) -> str | None:
    """The name of the upstream pool of the route `context` builds for."""
    if context.route_name is None:
        return None
    for route in context.services.config.routes:
        if route.display_name == context.route_name:
            return _pool_name(route)
    return None


def _pool_name(route: RouteConfig) -> str:
    if isinstance(route.upstream, str):
        return route.upstream
    return f"route:{route.display_name}"
