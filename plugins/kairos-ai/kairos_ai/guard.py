"""A circuit breaker around the model endpoint: closed, open, then one trial call half-open."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger("kairos.ai")

CLOSED, OPEN, HALF_OPEN = 0, 1, 2


class EndpointBreaker:
    """Opens after `failures` consecutive failed calls; lets one trial through after `open_for`."""

    __slots__ = (
        "_clock",
        "_failures",
        "_opened_at",
        "_trial",
        "label",
        "open_for",
        "state",
        "threshold",
    )

    def __init__(
        self,
        failures: int,
        open_for: float,
        label: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = failures
        self.open_for = open_for
        self.label = label
        self._clock = clock
        self.state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial = False

    def admits(self) -> bool:
        """Whether a call may go out now (claims the single trial when half-open)."""
        if self.state == CLOSED:
            return True
        if self.state == OPEN:
            if self._clock() - self._opened_at < self.open_for:
                return False
            self.state = HALF_OPEN
            self._trial = False
        if self._trial:
            return False
        self._trial = True
        return True

    def record(self, ok: bool) -> None:
        """The outcome of an admitted call."""
        if ok:
            if self.state != CLOSED:
                log.warning("model endpoint of %s answers again: circuit closed", self.label)
            self.state = CLOSED
            self._failures = 0
            self._trial = False
            return
        self._failures += 1
        if self.state == HALF_OPEN or self._failures >= self.threshold:
            if self.state != OPEN:
                log.warning(
                    "model endpoint of %s failed %d times: circuit open for %.1fs",
                    self.label,
                    self._failures,
                    self.open_for,
                )
            self.state = OPEN
            self._opened_at = self._clock()
            self._trial = False

    def state_value(self) -> float:
        """0 closed, 1 open, 2 half-open (for the metrics gauge)."""
        return float(self.state)
