"""A limit whose counters live in Redis: builds keys and script arguments, reads the reply."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Callable
from typing import Any

from kairos_ratelimit.algorithms import Decision
from kairos_ratelimit.config import LimitSpec
from kairos_ratelimit.lua import SCRIPTS
from kairos_ratelimit.redis_link import RedisLink


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # an undo that failed is already logged by the link


class RedisCounter:
    """One limit in Redis; keys are `{prefix}{namespace:key}` plus a suffix (one hash slot)."""

    def __init__(
        self,
        spec: LimitSpec,
        link: RedisLink,
        namespace: str,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.spec = spec
        self.link = link
        self.script = SCRIPTS[spec.algorithm]
        self.prefix = f"{link.settings.key_prefix}{{{namespace}:"
        self.clock = clock
        self.cost = str(spec.cost)
        self.limit = spec.capacity
        algorithm = spec.algorithm
        self.two_keys = algorithm == "sliding_window_counter"
        self.needs_member = algorithm in ("sliding_window_log", "concurrency")
        if algorithm in ("token_bucket", "gcra"):
            self.params: tuple[str, ...] = (
                str(spec.quota),
                str(spec.window_us),
                str(spec.capacity),
            )
        elif algorithm == "concurrency":
            self.params = (str(spec.quota), str(round(spec.lease * 1_000_000)))
        else:
            self.params = (str(spec.quota), str(spec.window_us))
        self._members = itertools.count()
        self._member_base = f"{os.getpid()}.{os.urandom(4).hex()}."
        self.evictions = 0

    def keys(self, key: str) -> tuple[str, ...]:
        """The Redis keys of one counter (two for the sliding window counter, same slot)."""
        base = self.prefix + key + "}"
        return (base + ":c", base + ":p") if self.two_keys else (base,)

    def submit(self, key: str) -> tuple[asyncio.Future[Any], tuple[str, ...], str]:
        """Queue the script for `key`; decode the future's reply with `decision`."""
        keys = self.keys(key)
        now = str(self.clock()) if self.clock else ""
        if self.needs_member:
            member = self._member_base + str(next(self._members))
            args: tuple[str, ...] = (now, "hit", self.cost, *self.params, member)
        else:
            member = ""
            args = (now, "hit", self.cost, *self.params)
        return self.link.run(self.script, keys, args), keys, member

    def decision(self, reply: Any, keys: tuple[str, ...], member: str) -> Decision:
        """The script's reply as a decision that knows how to undo itself."""
        allowed, remaining, reset, retry, now = reply
        return Decision(
            bool(allowed),
            self.limit,
            int(remaining),
            int(reset),
            int(retry),
            (keys, str(now), member),
        )

    async def hit(self, key: str) -> Decision:
        """Run the algorithm's script for `key`; raises `BackendUnavailable`."""
        future, keys, member = self.submit(key)
        return self.decision(await future, keys, member)

    def undo(self, decision: Decision) -> None:
        """Give the units back (or release the slot) without waiting for Redis."""
        undo = decision.undo
        if undo is None:
            return
        decision.undo = None  # once, however many paths try
        keys, now, member = undo
        args = [now, "undo", self.cost, *self.params]
        if self.needs_member:
            args.append(member)
        self.link.run(self.script, keys, args).add_done_callback(_consume)
