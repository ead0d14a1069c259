"""The `cors` stage: answers preflights at the gateway and decorates actual responses."""

from __future__ import annotations

from multidict import CIMultiDict

from kairos_core import (
    BuildContext,
    Handler,
    Middleware,
    RequestContext,
    Response,
    error_response,
)
from kairos_cors.config import CorsConfig
from kairos_cors.origins import OriginMatcher

ALLOW_ORIGIN = "Access-Control-Allow-Origin"
ALLOW_CREDENTIALS = "Access-Control-Allow-Credentials"
ALLOW_METHODS = "Access-Control-Allow-Methods"
ALLOW_HEADERS = "Access-Control-Allow-Headers"
EXPOSE_HEADERS = "Access-Control-Expose-Headers"
MAX_AGE = "Access-Control-Max-Age"
REQUEST_METHOD = "Access-Control-Request-Method"
REQUEST_HEADERS = "Access-Control-Request-Headers"
_RESPONSE_CORS_HEADERS = (
    ALLOW_ORIGIN,
    ALLOW_CREDENTIALS,
    ALLOW_METHODS,
    ALLOW_HEADERS,
    EXPOSE_HEADERS,
    MAX_AGE,
)
# Fetch standard: request headers a browser may send without asking (by name).
SAFELISTED_HEADERS = frozenset({"accept", "accept-language", "content-language", "content-type"})


def add_vary(headers: CIMultiDict[str], names: tuple[str, ...]) -> None:
    """Add `names` to the Vary header, keeping existing entries and never duplicating."""
    current = headers.getall("Vary", [])
    tokens = [t.strip() for value in current for t in value.split(",") if t.strip()]
    if "*" in tokens:
        return
    present = {t.lower() for t in tokens}
    missing = [n for n in names if n.lower() not in present]
    if missing:
        headers["Vary"] = ", ".join([*tokens, *missing])


def check_route_methods(context: BuildContext) -> None:
    """Refuse routes whose `methods` leave out OPTIONS: their preflights would never arrive."""
    config = context.services.config
    for route in config.routes:
        name = route.display_name
        if context.scope == "route":
            if name != context.route_name:
                continue
        elif any(entry.name == "cors" for entry in route.plugins):
            continue  # that route's own entry (or `enabled: false`) replaces the global one
        if route.methods is not None and "OPTIONS" not in route.methods:
            raise ValueError(
                f"route {name!r} allows only {', '.join(route.methods)}: add OPTIONS to its "
                "`methods` so the gateway can answer CORS preflights"
                + ("" if context.scope == "route" else ", or disable cors on that route")
            )


def build(config: CorsConfig, context: BuildContext) -> Middleware:
    """Compile the origin matcher and the constant header values once."""
    if context.scope != "consumer":  # the core refuses pre-auth stages per consumer itself
        check_route_methods(context)
    origins = OriginMatcher(config.allow_origins, config.allow_origin_regex)
    credentials = config.allow_credentials
    literal_star = origins.any and not credentials
    """Every origin, no credentials: a constant `*` that does not vary by Origin."""
    any_method = "*" in config.allow_methods
    methods = frozenset(config.allow_methods)
    methods_value = ", ".join(config.allow_methods)
    any_header = "*" in config.allow_headers
    allowed_headers = frozenset(h.lower() for h in config.allow_headers) | SAFELISTED_HEADERS
    headers_value = ", ".join(config.allow_headers)
    exposed = ", ".join(config.expose_headers)
    max_age = None if config.max_age is None else str(config.max_age)
    preflight_vary: tuple[str, ...] = () if literal_star else ("Origin",)
    if any_method:
        preflight_vary += (REQUEST_METHOD,)
    if any_header:
        preflight_vary += (REQUEST_HEADERS,)

    def refuse(ctx: RequestContext, error_type: str, message: str) -> Response:
        response = error_response(403, error_type, message, ctx.request_id)
        add_vary(response.headers, preflight_vary)
        return response

    def preflight(ctx: RequestContext, origin: str, method: str) -> Response:
        if not origins.allows(origin):
            return refuse(ctx, "cors_origin_not_allowed", f"origin {origin} is not allowed")
        if not any_method and method not in methods:
            return refuse(
                ctx, "cors_method_not_allowed", f"method {method} is not allowed cross-origin"
            )
        requested = ctx.request.headers.get(REQUEST_HEADERS, "")
        if requested and not any_header:
            names = [h.strip().lower() for h in requested.split(",") if h.strip()]
            refused = [h for h in names if h not in allowed_headers]
            if refused:
                return refuse(
                    ctx,
                    "cors_header_not_allowed",
                    f"request header(s) {', '.join(refused)} not allowed cross-origin",
                )
        headers: CIMultiDict[str] = CIMultiDict()
        headers[ALLOW_ORIGIN] = "*" if literal_star else origin
        if credentials:
            headers[ALLOW_CREDENTIALS] = "true"
        headers[ALLOW_METHODS] = method if any_method else methods_value
        if any_header:
            if requested:
                headers[ALLOW_HEADERS] = requested
        elif headers_value:
            headers[ALLOW_HEADERS] = headers_value
        if max_age is not None:
            headers[MAX_AGE] = max_age
        if preflight_vary:
            headers["Vary"] = ", ".join(preflight_vary)
        return Response(204, headers)

    async def cors(ctx: RequestContext, call_next: Handler) -> Response:
        incoming = ctx.request.headers
        origin = incoming.get("Origin")
        if origin is not None and ctx.method == "OPTIONS":
            method = incoming.get(REQUEST_METHOD)
            if method is not None:
                return preflight(ctx, origin, method.strip())
        response = await call_next(ctx)
        headers = response.headers
        for name in _RESPONSE_CORS_HEADERS:
            if name in headers:
                del headers[name]  # the gateway owns CORS on this route
        if literal_star:
            headers[ALLOW_ORIGIN] = "*"
        else:
            add_vary(headers, ("Origin",))
            if origin is None or not origins.allows(origin):
                return response
            headers[ALLOW_ORIGIN] = origin
            if credentials:
                headers[ALLOW_CREDENTIALS] = "true"
        if exposed:
            headers[EXPOSE_HEADERS] = exposed
        return response

    return cors
