"""Latency-aware balancing: peak EWMA of response time, times load, power of two choices."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence

from pydantic import BaseModel, ConfigDict, Field

from kairos_balancers.candidate_cache import CandidateCache, Candidates, offered
from kairos_core import Backend, RequestContext, UpstreamPool

UNKNOWN_BUSY_COST = 1e9
"""Cost of a backend with no latency sample yet but a request in flight: wait for its answer."""


class EwmaConfig(BaseModel):
    """Settings of the `ewma` balancer."""

    model_config = ConfigDict(extra="forbid")
    decay_time: float = Field(
        10.0,
        gt=0,
        description="Time constant (seconds) of the moving average: older samples weigh "
        "e^-(age/decay_time); an idle backend's estimate decays the same way, so it is retried.",
    )
    failure_penalty: float = Field(
        1.0,
        ge=0,
        description="Seconds recorded for a failed attempt (connection error or 5xx) that "
        "answered faster, so a backend failing fast does not look fast.",
    )


class LatencyEstimate:
    """One backend's peak-sensitive moving average of response time."""

    __slots__ = ("seconds", "stamp")

    def __init__(self) -> None:
        self.seconds = 0.0
        self.stamp = 0.0


class EwmaChoices:
    """The backends of one candidate set and the inverse of the weights to use."""

    __slots__ = ("backends", "inverse")

    def __init__(self, candidates: Candidates) -> None:
        self.backends, weights = offered(candidates)
        self.inverse = tuple(1.0 / w for w in weights)


class PeakEwma:
    """Picks the better of two random backends by `latency x (in_flight + 1) / weight`.

    Latency is a peak-sensitive EWMA (as in Finagle and Linkerd): a slower sample replaces the
    average at once, faster ones blend in over `decay_time`. The core feeds it through
    `observe` after every upstream attempt.
    """

    __slots__ = ("_choices", "_clock", "_decay", "_estimates", "_penalty", "_random")

    def __init__(
        self,
        config: EwmaConfig,
        backends: Sequence[Backend] = (),
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._decay = config.decay_time
        self._penalty = config.failure_penalty
        self._clock = clock
        self._random = (rng or random.Random()).random
        self._estimates: dict[Backend, LatencyEstimate] = {b: LatencyEstimate() for b in backends}
        self._choices: CandidateCache[EwmaChoices] = CandidateCache(EwmaChoices)

    def _estimate(self, backend: Backend) -> LatencyEstimate:
        estimate = self._estimates.get(backend)
        if estimate is None:
            estimate = self._estimates[backend] = LatencyEstimate()
        return estimate

    def latency(self, backend: Backend, now: float | None = None) -> float:
        """The backend's current estimate in seconds, decayed for the time since its last sample."""
        estimate = self._estimate(backend)
        if now is None:
            now = self._clock()
        return estimate.seconds * math.exp((estimate.stamp - now) / self._decay)

    def cost(self, backend: Backend, now: float, inverse_weight: float = 1.0) -> float:
        """Expected wait at this backend, divided by its weight."""
        estimate = self._estimates.get(backend) or self._estimate(backend)
        seconds = estimate.seconds
        if seconds == 0.0:
            return UNKNOWN_BUSY_COST * backend.in_flight
        decayed = seconds * math.exp((estimate.stamp - now) / self._decay)
        return decayed * (backend.in_flight + 1) * inverse_weight

    def observe(self, backend: Backend, seconds: float, ok: bool) -> None:
        """Fold one attempt's time to the response head into the backend's average."""
        if not ok:
            seconds = max(seconds, self._penalty)
        estimate = self._estimate(backend)
        now = self._clock()
        keep = math.exp((estimate.stamp - now) / self._decay)
        decayed = estimate.seconds * keep
        estimate.seconds = seconds if seconds > decayed else decayed + seconds * (1.0 - keep)
        estimate.stamp = now

    def pick(self, ctx: RequestContext | None, candidates: Sequence[Backend]) -> Backend | None:
        """The cheaper of two distinct random backends (the first drawn on a tie)."""
        if len(candidates) == 1:
            return candidates[0]
        choices = self._choices.get(candidates)
        backends = choices.backends
        count = len(backends)
        if count == 1:
            return backends[0]
        draw = self._random
        first = int(draw() * count)
        second = int(draw() * (count - 1))
        if second >= first:
            second += 1
        a, b = backends[first], backends[second]
        now = self._clock()
        inverse = choices.inverse
        return b if self.cost(b, now, inverse[second]) < self.cost(a, now, inverse[first]) else a


def build_ewma(config: EwmaConfig, pool: UpstreamPool) -> PeakEwma:
    """Build the balancer of one pool."""
    return PeakEwma(config, pool.backends)
