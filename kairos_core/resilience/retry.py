"""Retry policy: which failures are retried, the idempotency rule, and a retry budget."""

from __future__ import annotations

import time
from collections.abc import Callable

from kairos_core.config.resilience import RetryBudgetConfig, RetryConfig, parse_statuses
from kairos_core.upstream.pool import BROKEN, CONNECT_ERROR, TIMEOUT


class RetryBudget:
    """Retries may be at most `ratio` x requests (+ `min_retries`) over a sliding window."""

    def __init__(
        self, config: RetryBudgetConfig, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ratio = config.ratio
        self.minimum = config.min_retries
        self.window = config.window
        self._clock = clock
        self._start = clock()
        self._requests = [0, 0]  # previous window, current window
        self._retries = [0, 0]

    def _roll(self) -> float:
        now = self._clock()
        elapsed = now - self._start
        if elapsed >= self.window:
            windows = int(elapsed // self.window)
            if windows == 1:
                self._requests = [self._requests[1], 0]
                self._retries = [self._retries[1], 0]
            else:
                self._requests = [0, 0]
                self._retries = [0, 0]
            self._start += windows * self.window
            elapsed = now - self._start
        return elapsed / self.window

    def _weighted(self, counts: list[int], progress: float) -> float:
        return counts[0] * (1.0 - progress) + counts[1]

    def note_request(self) -> None:
        """A request was received on the route."""
        self._roll()
        self._requests[1] += 1

    def try_spend(self) -> bool:
        """Take one retry from the budget, or refuse when it is used up."""
        progress = self._roll()
        allowed = self.minimum + self.ratio * self._weighted(self._requests, progress)
        if self._weighted(self._retries, progress) + 1 > allowed:
            return False
        self._retries[1] += 1
        return True


class RetryPolicy:
    """A route's retry rules, resolved once at config load."""

    def __init__(self, config: RetryConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.max_retries = config.max_retries
        outcomes = set(parse_statuses(config.on_statuses))
        if config.on_connect_error:
            outcomes.add(CONNECT_ERROR)
        if config.on_timeout:
            outcomes.add(TIMEOUT)
        if config.on_reset:
            outcomes.add(BROKEN)
        self.retry_on = frozenset(outcomes)
        self.idempotent = frozenset(m.upper() for m in config.idempotent_methods)
        self.budget = RetryBudget(config.budget, clock)
        self.replay_buffer = int(config.replay_buffer)
        self.deadline = config.deadline
        self.retries_made = 0
        self.budget_refusals = 0

    def wants(self, outcome: int) -> bool:
        """Whether this outcome (a status, CONNECT_ERROR or TIMEOUT) is worth another attempt."""
        return outcome in self.retry_on

    def may_resend(self, method: str, sent: bool) -> bool:
        """Never resend a non-idempotent request whose bytes may have reached a backend."""
        return not sent or method in self.idempotent or self.config.retry_non_idempotent
