"""The innermost handler of every HTTP route: pick a backend, send the request, stream back."""

from __future__ import annotations

import asyncio
import logging

from kairos_core.context import RequestBodyTooLarge, RequestContext
from kairos_core.forwarding import response_headers
from kairos_core.pipeline import CompiledRoute
from kairos_core.plugin_api import Handler
from kairos_core.response import Response, error_response
from kairos_core.upstream.client import UpstreamError
from kairos_core.upstream.pool import NoBackendAvailable

log = logging.getLogger("kairos.proxy")


def make_proxy_handler(route: CompiledRoute) -> Handler:
    """Build the handler that forwards a request of `route` to its upstream pool."""
    pool = route.pool
    client = pool.client
    timeouts = route.timeouts
    config = route.config
    fixed_host = config.host_header
    preserve_host = config.preserve_host
    observe = getattr(pool.balancer, "observe", None)

    async def proxy(ctx: RequestContext) -> Response:
        try:
            backend = pool.choose(ctx)
        except NoBackendAvailable as exc:
            response = error_response(503, "no_backend_available", str(exc), ctx.request_id)
            response.headers["Retry-After"] = "1"
            return response
        ctx.backend = backend
        headers = ctx.headers
        if fixed_host is not None:
            headers["Host"] = fixed_host
        elif not preserve_host:
            headers["Host"] = backend.host_header
        backend.in_flight += 1
        sent_at = loop_time() if observe is not None else 0.0
        try:
            upstream = await client.send(
                backend,
                ctx.request.method,
                ctx.upstream_target,
                headers,
                ctx.body_for_upstream(),
                timeouts,
            )
        except UpstreamError as exc:
            backend.in_flight -= 1
            if observe is not None:
                observe(backend, loop_time() - sent_at, False)
            if ctx.body_failure is not None:
                return body_error_response(ctx.body_failure, ctx)
            log.warning("route %s: %s", route.name, exc)
            return error_response(exc.status, f"upstream_{exc.kind}", str(exc), ctx.request_id)
        except RequestBodyTooLarge:
            backend.in_flight -= 1
            return body_error_response(RequestBodyTooLarge(ctx.max_body_size), ctx)
        except BaseException:
            backend.in_flight -= 1
            raise
        response = Response(
            upstream.status, response_headers(upstream.headers), upstream.body, upstream.reason
        )
        response.on_close(lambda: _release(backend))
        return response

    return proxy


def loop_time() -> float:
    """The running loop's clock (monotonic seconds)."""
    return asyncio.get_running_loop().time()


def _release(backend: object) -> None:
    backend.in_flight -= 1  # type: ignore[attr-defined]


def body_error_response(error: BaseException, ctx: RequestContext) -> Response:
    """413 for an oversized body, 408 when the client stalled, 400 when it went away."""
    if isinstance(error, RequestBodyTooLarge):
        return error_response(
            413,
            "body_too_large",
            f"request body exceeds the limit of {ctx.max_body_size} bytes",
            ctx.request_id,
        )
    if isinstance(error, TimeoutError):
        return error_response(
            408, "request_timeout", "the client stopped sending the request body", ctx.request_id
        )
    return error_response(400, "incomplete_body", "the request body was cut short", ctx.request_id)
