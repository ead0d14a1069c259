"""In-process counters: the memory backend of a single-worker gateway (or `share_across_workers: false`)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from kairos_ratelimit.algorithms import Decision, SlidingWindowLog, windowed
from kairos_ratelimit.config import LimitSpec

Clock = Callable[[], int]
"""Returns the time in integer microseconds (monotonic unless a test injects its own)."""


def monotonic_us() -> int:
    """The monotonic clock in microseconds (the same in every process of this machine)."""
    return time.monotonic_ns() // 1000


class Counter(Protocol):
    """One limit's counters in this process (or in shared memory): check and give back."""

    spec: LimitSpec

    @property
    def evictions(self) -> int:
        """Keys dropped to stay within `max_keys`."""
        ...

    def hit(self, key: str) -> Decision:
        """Count one request for `key` if it fits."""
        ...

    def undo(self, decision: Decision) -> None:
        """Give back what `hit` counted (or release a concurrency slot)."""
        ...


class _Bounded:
    """Keeps a dict of per-key state under `max_keys` by dropping stale, then oldest, entries."""

    def __init__(self, max_keys: int) -> None:
        self.max_keys = max_keys
        self.evictions = 0

    def _trim(self, table: dict[str, Any], stale: Callable[[Any], bool]) -> None:
        for key in [k for k, v in table.items() if stale(v)]:
            del table[key]
        excess = len(table) - self.max_keys * 9 // 10
        if excess > 0:
            for key in list(table)[:excess]:
                del table[key]
            self.evictions += excess


class LocalWindowed(_Bounded):
    """A windowed algorithm (token bucket, GCRA, fixed or sliding counter) over a dict."""

    def __init__(self, spec: LimitSpec, max_keys: int, clock: Clock = monotonic_us) -> None:
        super().__init__(max_keys)
        self.spec = spec
        self.algorithm = windowed(spec)
        self.cost = spec.cost
        self.clock = clock
        self.table: dict[str, list[float]] = {}

    def hit(self, key: str) -> Decision:
        now = self.clock()
        state = self.table.get(key)
        if state is None:
            if len(self.table) >= self.max_keys:
                self._trim(self.table, lambda s: self.algorithm.expires(s) <= now)
            state = self.table[key] = [0.0] * self.algorithm.fields
        decision = self.algorithm.hit(state, now, self.cost)
        decision.undo = (key, now)
        return decision

    def undo(self, decision: Decision) -> None:
        key, now = decision.undo
        state = self.table.get(key)
        if state is not None:
            self.algorithm.undo(state, now, self.cost)


class LocalLog(_Bounded):
    """The sliding window log over a dict of deques."""

    def __init__(self, spec: LimitSpec, max_keys: int, clock: Clock = monotonic_us) -> None:
        super().__init__(max_keys)
        self.spec = spec
        self.algorithm = SlidingWindowLog(spec.quota, spec.window_us)
        self.cost = spec.cost
        self.clock = clock
        self.table: dict[str, deque[int]] = {}

    def hit(self, key: str) -> Decision:
        now = self.clock()
        log = self.table.get(key)
        if log is None:
            if len(self.table) >= self.max_keys:
                horizon = now - self.spec.window_us
                self._trim(self.table, lambda q: not q or q[-1] <= horizon)
            log = self.table[key] = deque()
        decision = self.algorithm.hit(log, now, self.cost)
        decision.undo = (key, now)
        return decision

    def undo(self, decision: Decision) -> None:
        key, now = decision.undo
        log = self.table.get(key)
        if log is not None:
            self.algorithm.undo(log, now, self.cost)


class LocalConcurrency:
    """Requests in flight per key; `undo` releases the slot."""

    def __init__(self, spec: LimitSpec, clock: Clock = monotonic_us) -> None:
        self.spec = spec
        self.limit = spec.quota
        self.cost = spec.cost
        self.evictions = 0
        self.table: dict[str, int] = {}

    def hit(self, key: str) -> Decision:
        held = self.table.get(key, 0)
        if held + self.cost > self.limit:
            return Decision(False, self.limit, self.limit - held, 0, 1_000_000)
        self.table[key] = held + self.cost
        return Decision(True, self.limit, self.limit - held - self.cost, 0, 0, key)

    def undo(self, decision: Decision) -> None:
        key = decision.undo
        if not isinstance(key, str):
            return
        decision.undo = None  # release once, however many paths try
        left = self.table.get(key, 0) - self.cost
        if left > 0:
            self.table[key] = left
        else:
            self.table.pop(key, None)


def local_counter(spec: LimitSpec, max_keys: int, clock: Clock = monotonic_us) -> Counter:
    """The in-process counter for `spec`."""
    if spec.algorithm == "concurrency":
        return LocalConcurrency(spec, clock)
    if spec.algorithm == "sliding_window_log":
        return LocalLog(spec, max_keys, clock)
    return LocalWindowed(spec, max_keys, clock)
