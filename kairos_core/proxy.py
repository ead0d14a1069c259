"""The innermost handler of every HTTP route: pick a backend, send, retry if allowed, stream back.

The first attempt is plain code; tenacity is entered only after a failure that the route's
retry policy wants to retry, so healthy traffic never pays for the retry machinery.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from time import monotonic
from typing import cast

from aiohttp.hdrs import HOST
from multidict import CIMultiDict
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)
from tenacity.stop import stop_base

from kairos_core.body_stream import RequestBodyTooLarge
from kairos_core.context import RequestContext
from kairos_core.forwarding import response_headers
from kairos_core.pipeline import CompiledRoute
from kairos_core.plugin_api import Handler
from kairos_core.resilience.retry import RetryPolicy
from kairos_core.response import Response, closing, error_response
from kairos_core.upstream.client import UpstreamError
from kairos_core.upstream.pool import (
    BROKEN,
    CONNECT_ERROR,
    TIMEOUT,
    Backend,
    NoBackendAvailable,
    UpstreamPool,
)
from kairos_core.websocket import is_upgrade

log = logging.getLogger("kairos.proxy")

_ERROR_OUTCOMES = {"connect": CONNECT_ERROR, "connect_timeout": TIMEOUT, "timeout": TIMEOUT}


@dataclass(slots=True)
class Attempt:
    """One try at a backend: the response to return and how it went."""

    response: Response
    backend: Backend | None
    outcome: int
    """The status, or CONNECT_ERROR / TIMEOUT / BROKEN; 0 when no backend was tried."""
    sent: bool
    """Whether request bytes may have reached the backend."""


def make_proxy_handler(route: CompiledRoute) -> Handler:
    """Build the handler that forwards a request of `route` to its upstream pool(s)."""
    default_pool = route.pool
    split = route.split
    mirror = route.mirror
    policy = route.retry
    timeouts = route.timeouts
    config = route.config
    fixed_host = config.host_header
    preserve_host = config.preserve_host
    stats = route.stats

    async def attempt(
        ctx: RequestContext, pool: UpstreamPool, exclude: tuple[Backend, ...]
    ) -> Attempt:
        try:
            if pool.pick_async is None:
                backend = pool.choose(ctx, exclude)
            else:
                backend = await pool.choose_async(ctx, exclude)
        except NoBackendAvailable as exc:
            response = error_response(503, "no_backend_available", str(exc), ctx.request_id)
            response.headers["Retry-After"] = str(max(1, round(exc.retry_after)))
            return Attempt(response, None, 0, False)
        ctx.backend = backend
        headers = ctx.headers
        if fixed_host is not None:
            headers[HOST] = fixed_host
        elif not preserve_host:
            headers[HOST] = backend.host_header
        observe = pool.observe
        sent_at = monotonic()
        backend.attempt()
        try:
            upstream = await pool.client.send(
                backend,
                ctx.request.method,
                ctx.upstream_target,
                headers,
                ctx.body_for_upstream(),
                timeouts,
            )
        except UpstreamError as error:  # not `exc`: mypyc types a name once per function
            backend.release()
            outcome = _ERROR_OUTCOMES.get(error.kind, BROKEN)
            backend.report(outcome)
            if stats is not None:
                stats.upstream_error(error.kind)
            if observe is not None:
                observe(backend, monotonic() - sent_at, False)
            if ctx.body_failure is not None:
                return Attempt(body_error_response(ctx.body_failure, ctx), backend, 0, True)
            log.warning("route %s: %s", route.name, error)
            return Attempt(
                error_response(error.status, f"upstream_{error.kind}", str(error), ctx.request_id),
                backend,
                outcome,
                error.sent,
            )
        except RequestBodyTooLarge:
            backend.release()
            return Attempt(
                body_error_response(RequestBodyTooLarge(ctx.max_body_size), ctx), backend, 0, True
            )
        except BaseException:
            backend.release()
            raise
        status = upstream.status
        backend.report(status)
        elapsed = monotonic() - sent_at
        ctx.upstream_seconds = elapsed
        if stats is not None:
            stats.upstream.observe(elapsed)
            latency = backend.latency
            if latency is not None:
                latency.observe(elapsed)
        if observe is not None:
            observe(backend, elapsed, status < 500)
        end_to_end = upstream.headers if upstream.end_to_end else response_headers(upstream.headers)
        headers = cast("CIMultiDict[str]", end_to_end)
        whole = upstream.whole
        if whole is not None:  # the body came with the head: the backend's part is over
            backend.release()
            return Attempt(Response(status, headers, whole, upstream.reason), backend, status, True)
        response = Response(status, headers, upstream.body, upstream.reason)
        response.on_close(backend.release)  # once the streamed body is over
        return Attempt(response, backend, status, True)

    websocket = route.websocket

    async def proxy(ctx: RequestContext) -> Response:
        pool = split.choose(ctx) if split is not None else default_pool
        if websocket is not None and is_upgrade(ctx):
            host = fixed_host if fixed_host is not None else (ctx.host if preserve_host else None)
            return await websocket.handle(ctx, pool, host)
        if policy is not None:
            policy.budget.note_request()
            await _make_replayable(ctx, policy)
        if mirror is not None:
            await mirror.maybe_copy(ctx)
        first = await attempt(ctx, pool, ())
        if policy is None or not policy.wants(first.outcome) or not _may_retry(ctx, policy, first):
            return first.response
        return await _retry(ctx, pool, policy, first, attempt)

    return proxy


async def _make_replayable(ctx: RequestContext, policy: RetryPolicy) -> None:
    """Buffer a small request body up front so a retry can send it again."""
    if ctx.body_buffered or not ctx.request.body_exists:
        return
    length = ctx.request.content_length
    if length is not None and length <= policy.replay_buffer:
        await ctx.read_body()


def _may_retry(ctx: RequestContext, policy: RetryPolicy, last: Attempt) -> bool:
    """The idempotency rule, body replayability and the retry budget, in that order."""
    if not policy.may_resend(ctx.request.method, last.sent):
        return False
    if not ctx.body_replayable:
        return False
    if not policy.budget.try_spend():
        policy.budget_refusals += 1
        return False
    return True


AttemptFunction = Callable[[RequestContext, UpstreamPool, tuple[Backend, ...]], Awaitable[Attempt]]


async def _retry(
    ctx: RequestContext,
    pool: UpstreamPool,
    policy: RetryPolicy,
    first: Attempt,
    attempt: AttemptFunction,
) -> Response:
    """Further attempts under tenacity: backoff with full jitter, other backends first."""
    tried: list[Backend] = [first.backend] if first.backend is not None else []
    last = first
    stop: stop_base = stop_after_attempt(policy.max_retries)
    if policy.deadline is not None:
        remaining = policy.deadline - (time.monotonic() - ctx.started)
        stop = stop | stop_after_delay(max(0.0, remaining))
    backoff = policy.config.backoff

    def again(state: RetryCallState) -> bool:
        result: Attempt = state.outcome.result()  # type: ignore[union-attr]
        return policy.wants(result.outcome) and _may_retry(ctx, policy, result)

    retrying = AsyncRetrying(
        stop=stop,
        wait=wait_random_exponential(
            multiplier=backoff.initial, max=backoff.max, exp_base=backoff.multiplier
        ),
        retry=again,
        retry_error_callback=lambda state: state.outcome.result(),  # type: ignore[union-attr]
    )

    async def next_attempt() -> Attempt:
        nonlocal last
        await last.response.close()
        policy.retries_made += 1
        ctx.retries += 1
        if ctx.route.stats is not None:
            ctx.route.stats.retries.value += 1
        last = await attempt(ctx, pool, tuple(tried))
        if last.backend is not None:
            tried.append(last.backend)
        return last

    result: Attempt = await retrying(next_attempt)
    return result.response


def body_error_response(error: BaseException, ctx: RequestContext) -> Response:
    """413 for an oversized body, 408 when the client stalled, 400 when it went away; the
    connection closes after it (after a 413 once aiohttp's lingering read drained the body)."""
    if isinstance(error, RequestBodyTooLarge):
        response = error_response(
            413,
            "body_too_large",
            f"request body exceeds the limit of {ctx.max_body_size} bytes",
            ctx.request_id,
        )
        return closing(response, ctx.request, drain=True)
    if isinstance(error, TimeoutError):
        response = error_response(
            408, "request_timeout", "the client stopped sending the request body", ctx.request_id
        )
    else:
        response = error_response(
            400, "incomplete_body", "the request body was cut short", ctx.request_id
        )
    return closing(response, ctx.request)
