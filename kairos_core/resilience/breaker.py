"""A circuit breaker per backend: closed -> open on failures -> half-open trials -> closed."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from enum import StrEnum

from kairos_core.config.resilience import CircuitBreakerConfig

log = logging.getLogger("kairos.breaker")

_BUCKETS = 10


class BreakerState(StrEnum):
    """The three states of a circuit."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Counts outcomes of one backend and decides whether it may receive requests."""

    def __init__(
        self,
        config: CircuitBreakerConfig,
        name: str,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.name = name
        self._clock = clock
        self._on_change = on_change
        self._state = BreakerState.CLOSED
        self._consecutive = 0
        self._open_until = 0.0
        self._open_duration = config.open_duration
        self._trials = 0
        self._bucket_span = config.window / _BUCKETS
        self._totals = [0] * _BUCKETS
        self._failures = [0] * _BUCKETS
        self._bucket_ids = [-1] * _BUCKETS
        self._timer: asyncio.TimerHandle | None = None
        self.trips = 0

    @property
    def state(self) -> BreakerState:
        """The current state (an expired open circuit turns half-open when looked at)."""
        if self._state is BreakerState.OPEN and self._clock() >= self._open_until:
            self._enter(BreakerState.HALF_OPEN)
        return self._state

    def admits(self) -> bool:
        """Whether a new request may go to this backend now."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.OPEN:
            return False
        return self._trials < self.config.half_open_requests

    def retry_after(self) -> float:
        """Seconds until an open circuit lets a trial request through."""
        return (
            max(0.0, self._open_until - self._clock()) if self._state is BreakerState.OPEN else 0.0
        )

    def on_attempt(self) -> None:
        """A request is being sent to the backend (counts half-open trials)."""
        if self._state is BreakerState.CLOSED:
            return
        if self.state is BreakerState.HALF_OPEN:
            self._trials += 1
            if self._trials >= self.config.half_open_requests and self._on_change is not None:
                self._on_change()

    def record(self, ok: bool) -> None:
        """The outcome of an attempt that `on_attempt` announced."""
        if ok and self._state is BreakerState.CLOSED:  # the usual case, in short
            if self.config.error_rate is not None:
                self._count(True)
            self._consecutive = 0
            return
        state = self.state
        if state is BreakerState.HALF_OPEN:
            self._trials = max(0, self._trials - 1)
            if ok:
                self._open_duration = self.config.open_duration
                self._enter(BreakerState.CLOSED)
            else:
                self._open_duration = min(
                    self._open_duration * self.config.backoff_multiplier,
                    self.config.max_open_duration,
                )
                self._trip("a half-open trial failed")
            return
        if state is BreakerState.OPEN:
            return
        self._count(ok)
        if ok:
            self._consecutive = 0
            return
        self._consecutive += 1
        if self._consecutive >= self.config.consecutive_failures:
            self._trip(f"{self._consecutive} consecutive failures")
            return
        rate = self.config.error_rate
        if rate is not None:
            total, failures = self._window_counts()
            if total >= self.config.min_requests and failures / total >= rate:
                self._trip(f"error rate {failures}/{total} over {self.config.window:g}s")

    def _count(self, ok: bool) -> None:
        if self.config.error_rate is None:
            return
        bucket_id = int(self._clock() / self._bucket_span)
        index = bucket_id % _BUCKETS
        if self._bucket_ids[index] != bucket_id:
            self._bucket_ids[index] = bucket_id
            self._totals[index] = 0
            self._failures[index] = 0
        self._totals[index] += 1
        if not ok:
            self._failures[index] += 1

    def _window_counts(self) -> tuple[int, int]:
        current = int(self._clock() / self._bucket_span)
        total = failures = 0
        for index in range(_BUCKETS):
            if current - self._bucket_ids[index] < _BUCKETS:
                total += self._totals[index]
                failures += self._failures[index]
        return total, failures

    def _trip(self, reason: str) -> None:
        self.trips += 1
        self._open_until = self._clock() + self._open_duration
        log.warning("circuit of %s opened for %.1fs: %s", self.name, self._open_duration, reason)
        self._enter(BreakerState.OPEN)
        self._schedule(self._open_duration)

    def _schedule(self, delay: float) -> None:
        """Look at the state again after `delay`, so an open circuit turns half-open on time."""
        if self._timer is not None:
            self._timer.cancel()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._timer = loop.call_later(delay, lambda: self.state)

    def _enter(self, new: BreakerState) -> None:
        if self._state is new:
            return
        self._state = new
        self._consecutive = 0
        self._trials = 0
        if new is BreakerState.CLOSED:
            self._bucket_ids = [-1] * _BUCKETS
            log.info("circuit of %s closed", self.name)
        elif new is BreakerState.HALF_OPEN:
            log.info(
                "circuit of %s half-open: allowing %d trial request(s)",
                self.name,
                self.config.half_open_requests,
            )
        if self._on_change is not None:
            self._on_change()

    def close(self) -> None:
        """Cancel the pending half-open timer (the backend is being discarded)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def adopt(self, other: CircuitBreaker) -> None:
        """Take over the state of the breaker this one replaces (on config reload)."""
        self._state = other._state
        self._open_until = other._open_until
        self._open_duration = other._open_duration
        self._consecutive = other._consecutive
        self.trips = other.trips
        if self._state is BreakerState.OPEN:
            self._schedule(max(0.0, self._open_until - self._clock()))
