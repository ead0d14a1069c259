"""Traffic splitting (canary share, header/cookie match) and request mirroring to a shadow pool."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping, Sequence

from multidict import CIMultiDict

from kairos_core.config.models import Timeouts
from kairos_core.config.resilience import MirrorConfig, SplitRule
from kairos_core.context import RequestContext
from kairos_core.upstream.client import UpstreamError
from kairos_core.upstream.pool import NoBackendAvailable, UpstreamPool

log = logging.getLogger("kairos.traffic")


class TrafficSplit:
    """Picks the pool of a request: matched rules first, then weighted shares, else the default."""

    def __init__(
        self, rules: Sequence[SplitRule], pools: Mapping[str, UpstreamPool], default: UpstreamPool
    ) -> None:
        self.default = default
        self.matches = [
            (tuple(rule.header.items()), tuple(rule.cookie.items()), pools[rule.upstream])
            for rule in rules
            if rule.header or rule.cookie
        ]
        self.shares: list[tuple[float, UpstreamPool]] = []
        cumulative = 0.0
        for rule in rules:
            if not (rule.header or rule.cookie):
                cumulative += rule.weight
                self.shares.append((cumulative, pools[rule.upstream]))

    def choose(self, ctx: RequestContext) -> UpstreamPool:
        """The pool this request goes to."""
        request = ctx.request
        for headers, cookies, pool in self.matches:
            if all(request.headers.get(k) == v for k, v in headers) and all(
                request.cookies.get(k) == v for k, v in cookies
            ):
                return pool
        if self.shares:
            draw = random.random() * 100.0
            for bound, pool in self.shares:
                if draw < bound:
                    return pool
        return self.default


class Mirror:
    """Sends a copy of requests to a shadow pool; never waits for it or uses its answer."""

    def __init__(self, config: MirrorConfig, pool: UpstreamPool, timeouts: Timeouts) -> None:
        self.config = config
        self.pool = pool
        self.timeouts = timeouts
        self.max_body = int(config.max_body_size)
        self._tasks: set[asyncio.Task[None]] = set()
        self.sent = 0
        self.failed = 0
        self.skipped = 0

    async def maybe_copy(self, ctx: RequestContext) -> None:
        """Start a shadow request for `ctx` if it is sampled and its body is small enough."""
        if self.config.percent < 100 and random.random() * 100.0 >= self.config.percent:
            return
        body: bytes | None = None
        if ctx.has_body():
            length = ctx.request.content_length
            if not ctx.body_buffered and (length is None or length > self.max_body):
                self.skipped += 1
                return
            body = await ctx.read_body()
        headers = CIMultiDict(ctx.headers)
        task = asyncio.create_task(
            self._send(ctx.request.method, ctx.upstream_target, headers, body)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(
        self, method: str, target: str, headers: CIMultiDict[str], body: bytes | None
    ) -> None:
        try:
            backend = self.pool.choose(None)
        except NoBackendAvailable:
            self.failed += 1
            return
        headers["Host"] = backend.host_header
        try:
            async with asyncio.timeout(self.config.timeout):
                response = await self.pool.client.send(
                    backend, method, target, headers, body, self.timeouts
                )
                async for _ in response.body:
                    pass
            self.sent += 1
        except (UpstreamError, TimeoutError, OSError) as exc:
            self.failed += 1
            log.debug("mirror to %s failed: %s", self.pool.name, exc)

    async def close(self) -> None:
        """Cancel shadow requests still running."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
