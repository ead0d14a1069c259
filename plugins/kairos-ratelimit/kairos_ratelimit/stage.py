"""The request stage: check every limit, refuse with 429 or pass on with the budget in headers."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kairos_core import (
    BuildContext,
    GatewayServices,
    Handler,
    RequestContext,
    Response,
    error_response,
)
from kairos_ratelimit import backends
from kairos_ratelimit.algorithms import BackendUnavailable, Decision
from kairos_ratelimit.config import LimitSpec, RateLimitConfig
from kairos_ratelimit.headers import HeaderWriter, retry_after
from kairos_ratelimit.keys import KeyFunction, describe_missing, key_function, needs_auth

if TYPE_CHECKING:
    from kairos_ratelimit.redis_link import RedisLink

Checked = list[tuple[int, Decision]]


@dataclass(slots=True)
class BoundLimit:
    """One configured limit with its key function, counter and metric children."""

    index: int
    spec: LimitSpec
    parts: list[str]
    key: KeyFunction
    allowed: Any
    limited: Any
    skipped: Any
    errors: Any
    counter: Any = None
    in_flight: bool = False


class RateLimitStage:
    """Built once per plugin entry; `start` opens the counters, each request awaits `__call__`."""

    def __init__(self, component: str, config: RateLimitConfig, context: BuildContext) -> None:
        self.config = config
        self.services: GatewayServices = context.services
        self.namespace = f"{component}/{config.namespace or _scope_namespace(context)}"
        label = context.route_name or (
            f"consumer:{context.consumer_name}" if context.consumer_name else context.scope
        )
        metrics = context.services.metrics
        decisions = metrics.counter(
            "kairos_ratelimit_decisions",
            "Rate-limit checks by route, limit and outcome.",
            ("route", "limit", "decision"),
        )
        self.limits: list[BoundLimit] = []
        for index, spec in enumerate(config.limits):
            parts = list(config.key if spec.key is None else spec.key)
            if component.endswith("pre-auth") and needs_auth(parts):
                raise ValueError(
                    f"limits[{index}]: {', '.join(needs_auth(parts))} is only known after "
                    "authentication; use the `rate-limit` component for it"
                )
            name = spec.display_name()
            self.limits.append(
                BoundLimit(
                    index,
                    spec,
                    parts,
                    key_function(parts),
                    decisions.labels(label, name, "allowed"),
                    decisions.labels(label, name, "limited"),
                    decisions.labels(label, name, "skipped"),
                    decisions.labels(label, name, "backend_error"),
                    in_flight=spec.algorithm == "concurrency",
                )
            )
        self.errors_total = metrics.counter(
            "kairos_ratelimit_backend_errors",
            "Rate-limit backend failures (Redis unreachable, slow or erroring).",
            ("backend",),
        )
        self.headers = HeaderWriter(config.limits, config.headers.style)
        self.on_allowed = config.headers.on_allowed and config.headers.style != "none"
        self.reject_missing = config.on_missing_key == "reject"
        self.deny_on_error = config.on_error == "deny"
        self.link: RedisLink | None = None
        self._holds = any(limit.in_flight for limit in self.limits)
        """Some limit counts requests in flight: allowed ones hold a slot until they end."""
        self._call: Callable[[RequestContext, Handler], Any] = self._unstarted

    async def start(self) -> None:
        """Open the counters (shared memory, or the shared Redis client)."""
        config, services = self.config, self.services
        if config.backend == "redis":
            self.link = link = backends.acquire_link(config, services)
            errors = self.errors_total.labels(link.name)
            link.on_failure.append(errors.inc)
            for limit in self.limits:
                limit.counter = backends.open_redis(link, limit.spec, self.namespace)
            self._call = self._check_redis
        else:
            for limit in self.limits:
                limit.counter = backends.open_memory(config, limit.spec, self.namespace, services)
            single = len(self.limits) == 1 and not self._holds
            self._call = self._check_memory_one if single else self._check_memory

    async def close(self) -> None:
        """Release counters and the Redis link (the last user closes them)."""
        if self.link is not None:
            await backends.release_link(self.link, self.services)
            self.link = None
        else:
            for limit in self.limits:
                if limit.counter is not None:
                    backends.close_memory(limit.counter)
        for limit in self.limits:
            limit.counter = None

    def __call__(self, ctx: RequestContext, call_next: Handler) -> Any:
        """Check the request's limits, then run the rest of the chain (or refuse)."""
        return self._call(ctx, call_next)

    async def _unstarted(self, ctx: RequestContext, call_next: Handler) -> Response:
        raise RuntimeError("rate-limit stage used before start()")

    async def _check_memory(self, ctx: RequestContext, call_next: Handler) -> Response:
        checked: Checked = []
        for limit in self.limits:
            key = limit.key(ctx)
            if key is None:
                if self.reject_missing:
                    self._give_back(checked)
                    return self._missing(ctx, limit)
                limit.skipped.inc()
                continue
            decision = limit.counter.hit(key)
            if not decision.allowed:
                limit.limited.inc()
                self._give_back(checked)
                checked.append((limit.index, decision))
                return self._refuse(ctx, checked, decision)
            limit.allowed.value += 1
            checked.append((limit.index, decision))
        return await self._proceed(ctx, call_next, checked)

    async def _check_memory_one(self, ctx: RequestContext, call_next: Handler) -> Response:
        """`_check_memory` for the common case of one windowed limit, without the bookkeeping."""
        limit = self.limits[0]
        key = limit.key(ctx)
        if key is None:
            if self.reject_missing:
                return self._missing(ctx, limit)
            limit.skipped.inc()
            return await call_next(ctx)
        decision = limit.counter.hit(key)
        if not decision.allowed:
            limit.limited.inc()
            return self._refuse(ctx, [(0, decision)], decision)
        limit.allowed.value += 1
        response = await call_next(ctx)
        if self.on_allowed:
            self.headers.write_one(response.headers, decision)
        return response

    async def _check_redis(self, ctx: RequestContext, call_next: Handler) -> Response:
        pending = []
        for limit in self.limits:
            key = limit.key(ctx)
            if key is None:
                if self.reject_missing:
                    return self._missing(ctx, limit)
                limit.skipped.inc()
                continue
            try:
                pending.append((limit, *limit.counter.submit(key)))
            except BackendUnavailable:
                pending.append((limit, None, (), ""))
        checked: Checked = []
        refused: Decision | None = None
        failed = False
        for limit, future, keys, member in pending:
            try:
                if future is None:
                    raise BackendUnavailable("down")
                decision = limit.counter.decision(await future, keys, member)
            except BackendUnavailable:
                limit.errors.inc()
                failed = True
                continue
            if decision.allowed:
                limit.allowed.inc()
            else:
                limit.limited.inc()
                refused = refused or decision
            checked.append((limit.index, decision))
        if refused is not None or (failed and self.deny_on_error):
            self._give_back([(i, d) for i, d in checked if d.allowed])
            if refused is not None:
                return self._refuse(ctx, checked, refused)
            return self._unavailable(ctx)
        return await self._proceed(ctx, call_next, checked)

    async def _proceed(self, ctx: RequestContext, call_next: Handler, checked: Checked) -> Response:
        held = [(i, d) for i, d in checked if self.limits[i].in_flight] if self._holds else None
        if held:
            release = self._releaser(held)
            ctx.add_cleanup(release)
            try:
                response = await call_next(ctx)
            except BaseException:
                release()  # cancelled (client gone) or failed: free the slots now
                raise
        else:
            response = await call_next(ctx)
        if self.on_allowed and checked:
            self.headers.write(response.headers, checked)
        return response

    def _releaser(self, held: Checked) -> Callable[[], None]:
        def release() -> None:
            self._undo(held)

        return release

    def _give_back(self, checked: Checked) -> None:
        """Undo what a refused request counted, and show the budget as it is after that."""
        for index, decision in checked:
            limit = self.limits[index]
            limit.counter.undo(decision)
            decision.remaining += limit.spec.cost

    def _undo(self, checked: Checked) -> None:
        for index, decision in checked:
            self.limits[index].counter.undo(decision)

    def _refuse(self, ctx: RequestContext, checked: Checked, decision: Decision) -> Response:
        response = error_response(
            self.config.status, "rate_limited", self.config.message, ctx.request_id
        )
        response.headers["Retry-After"] = retry_after(decision)
        self.headers.write(response.headers, checked)
        return response

    def _missing(self, ctx: RequestContext, limit: BoundLimit) -> Response:
        return error_response(
            400,
            "rate_limit_key_missing",
            f"this route limits requests by {describe_missing(limit.parts)}, "
            "which this request does not carry",
            ctx.request_id,
        )

    def _unavailable(self, ctx: RequestContext) -> Response:
        response = error_response(
            503,
            "rate_limit_unavailable",
            "rate limiting is unavailable right now; try again shortly",
            ctx.request_id,
        )
        response.headers["Retry-After"] = str(math.ceil(self.config.redis.retry_interval))
        return response


def _scope_namespace(context: BuildContext) -> str:
    if context.scope == "route":
        return f"route:{context.route_name}"
    if context.scope == "consumer":
        return f"consumer:{context.consumer_name}"
    return "global"
