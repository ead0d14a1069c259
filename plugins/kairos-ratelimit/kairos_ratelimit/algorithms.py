"""The counting rules, as pure steps over a small state; times are integer microseconds.

Every windowed algorithm keeps a fixed-length list of numbers whose all-zero value means
"fresh", so the same step runs over a Python list (in-process memory) or over a slot of a
shared memory table. The Lua scripts of the Redis backend implement the same arithmetic.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Protocol

from kairos_ratelimit.config import LimitSpec

SLACK_US = 0.5
"""GCRA: fractional intervals drift by float rounding; half a microsecond early still counts."""
SLACK_TOKENS = 1e-9
"""Token bucket: the same allowance for fractional refills."""


class BackendUnavailable(Exception):
    """The counters could not be reached in time (Redis down or slow); `on_error` applies."""


class Decision:
    """The outcome of one check: allowed or not, the budget left and when it comes back."""

    __slots__ = ("allowed", "limit", "remaining", "reset_us", "retry_us", "undo")

    def __init__(
        self,
        allowed: bool,
        limit: int,
        remaining: int,
        reset_us: int,
        retry_us: int = 0,
        undo: Any = None,
    ) -> None:
        self.allowed = allowed
        self.limit = limit
        self.remaining = remaining
        self.reset_us = reset_us
        """Microseconds until the full budget is back."""
        self.retry_us = retry_us
        """When refused: microseconds until this request would be allowed."""
        self.undo: Any = undo
        """What the backend needs to give the units back (another limit refused the request)."""

    def __repr__(self) -> str:
        return (
            f"Decision(allowed={self.allowed}, limit={self.limit}, remaining={self.remaining}, "
            f"reset_us={self.reset_us}, retry_us={self.retry_us})"
        )


class WindowedAlgorithm(Protocol):
    """A rule over a fixed number of state fields (all zero = fresh)."""

    fields: int

    def hit(self, state: list[float], now: int, cost: int) -> Decision:
        """Count `cost` units at `now` if they fit; mutates `state`."""
        ...

    def undo(self, state: list[float], now: int, cost: int) -> None:
        """Give back `cost` units counted by a `hit` at the same `now`."""
        ...

    def expires(self, state: list[float]) -> int:
        """The time from which `state` is equivalent to a fresh one."""
        ...


class FixedWindow:
    """`limit` per aligned window [k*w, (k+1)*w); state: window index, count."""

    fields = 2

    def __init__(self, limit: int, window_us: int) -> None:
        self.limit = limit
        self.window = window_us

    def hit(self, state: list[float], now: int, cost: int) -> Decision:
        index = now // self.window
        count = int(state[1]) if state[0] == index else 0
        reset = (index + 1) * self.window - now
        if count + cost > self.limit:
            state[0], state[1] = index, count
            return Decision(False, self.limit, self.limit - count, reset, reset)
        state[0], state[1] = index, count + cost
        return Decision(True, self.limit, self.limit - count - cost, reset)

    def undo(self, state: list[float], now: int, cost: int) -> None:
        if state[0] == now // self.window:
            state[1] = max(0, state[1] - cost)

    def expires(self, state: list[float]) -> int:
        return int(state[0] + 1) * self.window


class SlidingWindowCounter:
    """Current window's count plus the previous one's, weighted by how much still overlaps."""

    fields = 3

    def __init__(self, limit: int, window_us: int) -> None:
        self.limit = limit
        self.window = window_us

    def hit(self, state: list[float], now: int, cost: int) -> Decision:
        window, limit = self.window, self.limit
        index = now // window
        if state[0] == index:
            current, previous = int(state[1]), int(state[2])
        elif state[0] == index - 1:
            current, previous = 0, int(state[1])
        else:
            current, previous = 0, 0
        elapsed = now - index * window
        # estimate * window, in integers: previous * (window - elapsed) + current * window
        scaled = previous * (window - elapsed) + current * window
        state[0], state[1], state[2] = index, current, previous
        if scaled + cost * window > limit * window:
            return Decision(
                False,
                limit,
                max(0, (limit * window - scaled) // window),
                self._reset(index, current, previous, now),
                self._retry(index, current, previous, now, cost),
            )
        current += cost
        state[1] = current
        scaled += cost * window
        return Decision(
            True,
            limit,
            max(0, (limit * window - scaled) // window),
            self._reset(index, current, previous, now),
        )

    def _reset(self, index: int, current: int, previous: int, now: int) -> int:
        if current:
            return (index + 2) * self.window - now
        if previous:
            return (index + 1) * self.window - now
        return 0

    def _retry(self, index: int, current: int, previous: int, now: int, cost: int) -> int:
        window, limit = self.window, self.limit
        if current + cost <= limit:
            # wait until previous * (window - elapsed) <= (limit - cost - current) * window
            spare = (limit - cost - current) * window
            elapsed = window - spare // previous
            return max(1, index * window + elapsed - now)
        spare = (limit - cost) * window
        elapsed = window - spare // current
        return max(1, (index + 1) * window + elapsed - now)

    def undo(self, state: list[float], now: int, cost: int) -> None:
        if state[0] == now // self.window:
            state[1] = max(0, state[1] - cost)

    def expires(self, state: list[float]) -> int:
        return int(state[0] + 2) * self.window


class TokenBucket:
    """A bucket of `burst` tokens refilled at `limit` per window; state: tokens used, last time."""

    fields = 2

    def __init__(self, limit: int, window_us: int, burst: int) -> None:
        self.limit = limit
        self.window = window_us
        self.burst = burst

    def hit(self, state: list[float], now: int, cost: int) -> Decision:
        limit, window, burst = self.limit, self.window, self.burst
        elapsed = now - int(state[1])
        used = state[0] - elapsed * limit / window if elapsed > 0 else state[0]
        if used < 0.0:
            used = 0.0
        state[1] = now
        if used + cost - burst > SLACK_TOKENS:
            state[0] = used
            retry = math.ceil((used + cost - burst) * window / limit)
            return Decision(
                False,
                burst,
                int(burst - used + SLACK_TOKENS),
                math.ceil(used * window / limit),
                max(1, retry),
            )
        used += cost
        state[0] = used
        return Decision(
            True, burst, int(burst - used + SLACK_TOKENS), math.ceil(used * window / limit)
        )

    def undo(self, state: list[float], now: int, cost: int) -> None:
        state[0] = max(0.0, state[0] - cost)

    def expires(self, state: list[float]) -> int:
        return int(state[1] + math.ceil(state[0] * self.window / self.limit))


class Gcra:
    """Generic cell rate algorithm: one number, the theoretical arrival time of the next request."""

    fields = 1

    def __init__(self, limit: int, window_us: int, burst: int) -> None:
        self.limit = burst
        self.interval = window_us / limit
        self.tolerance = burst * self.interval

    def hit(self, state: list[float], now: int, cost: int) -> Decision:
        tat = max(state[0], now)
        new_tat = tat + cost * self.interval
        allow_at = new_tat - self.tolerance
        if allow_at - now > SLACK_US:
            remaining = max(0, int((now - (tat - self.tolerance) + SLACK_US) // self.interval))
            return Decision(
                False, self.limit, remaining, math.ceil(tat - now), math.ceil(allow_at - now)
            )
        state[0] = new_tat
        remaining = max(0, int((now - allow_at + SLACK_US) // self.interval))
        return Decision(True, self.limit, remaining, math.ceil(new_tat - now))

    def undo(self, state: list[float], now: int, cost: int) -> None:
        state[0] = max(float(now), state[0] - cost * self.interval)

    def expires(self, state: list[float]) -> int:
        return math.ceil(state[0])


def windowed(spec: LimitSpec) -> WindowedAlgorithm:
    """The rule object for a windowed spec (everything but the log and concurrency)."""
    if spec.algorithm == "fixed_window":
        return FixedWindow(spec.quota, spec.window_us)
    if spec.algorithm == "sliding_window_counter":
        return SlidingWindowCounter(spec.quota, spec.window_us)
    if spec.algorithm == "token_bucket":
        return TokenBucket(spec.quota, spec.window_us, spec.capacity)
    if spec.algorithm == "gcra":
        return Gcra(spec.quota, spec.window_us, spec.capacity)
    raise ValueError(f"{spec.algorithm} is not a windowed algorithm")


class SlidingWindowLog:
    """One timestamp per counted unit; a unit counted at t counts during [t, t + window)."""

    def __init__(self, limit: int, window_us: int) -> None:
        self.limit = limit
        self.window = window_us

    def hit(self, log: deque[int], now: int, cost: int) -> Decision:
        horizon = now - self.window
        while log and log[0] <= horizon:
            log.popleft()
        size = len(log)
        if size + cost > self.limit:
            retry = log[size + cost - self.limit - 1] + self.window - now
            return Decision(
                False, self.limit, self.limit - size, log[-1] + self.window - now, retry
            )
        log.extend([now] * cost)
        return Decision(True, self.limit, self.limit - size - cost, self.window)

    def undo(self, log: deque[int], now: int, cost: int) -> None:
        for _ in range(cost):
            if log and log[-1] == now:
                log.pop()
