"""Smooth weighted round robin (nginx's algorithm): weights honoured, picks interleaved."""

from __future__ import annotations

from collections.abc import Sequence
from math import gcd

from kairos_balancers.candidate_cache import CandidateCache, Candidates, offered
from kairos_core import Backend, RequestContext

MAX_PERIOD = 16_384
"""Longest precomputed schedule; beyond it (or `MAX_BUILD_STEPS`) the algorithm runs live."""

MAX_BUILD_STEPS = 1_000_000
"""Most inner-loop steps spent precomputing one schedule (period x backends)."""


def reduced_weights(weights: Sequence[int]) -> list[int]:
    """Weights divided by their greatest common divisor."""
    divisor = gcd(*weights) or 1
    return [w // divisor for w in weights]


def smooth_step(weights: Sequence[int], current: list[int], total: int) -> int:
    """One step of nginx's smooth weighted round robin: the index picked; updates `current`."""
    best = 0
    best_weight = None
    for index, weight in enumerate(weights):
        value = current[index] + weight
        current[index] = value
        if best_weight is None or value > best_weight:
            best, best_weight = index, value
    current[best] -= total
    return best


def smooth_schedule(weights: Sequence[int]) -> list[int]:
    """A full period of the smooth sequence (each index appears `weight` times)."""
    total = sum(weights)
    current = [0] * len(weights)
    return [smooth_step(weights, current, total) for _ in range(total)]


class Rotation:
    """The weighted order for one candidate set: a precomputed period, or live state."""

    __slots__ = ("backends", "current", "period", "schedule", "total", "weights")

    def __init__(self, candidates: Candidates) -> None:
        backends, weights = offered(candidates)
        self.backends = backends
        self.weights = reduced_weights(weights)
        self.total = sum(self.weights)
        self.current = [0] * len(backends)
        self.schedule: tuple[Backend, ...] | None = None
        self.period = 0
        if self.total <= MAX_PERIOD and self.total * len(backends) <= MAX_BUILD_STEPS:
            self.schedule = tuple(backends[i] for i in smooth_schedule(self.weights))
            self.period = len(self.schedule)

    def step(self) -> Backend:
        """Run the algorithm live (used when the period is too long to precompute)."""
        return self.backends[smooth_step(self.weights, self.current, self.total)]


class SmoothWeightedRoundRobin:
    """Each backend gets `weight` picks per period, spread out rather than in bursts."""

    __slots__ = ("_position", "_rotations")

    def __init__(self, candidates: Sequence[Backend] = ()) -> None:
        self._rotations: CandidateCache[Rotation] = CandidateCache(Rotation)
        self._position = 0
        if candidates:
            self._rotations.get(candidates)

    def pick(self, ctx: RequestContext | None, candidates: Sequence[Backend]) -> Backend | None:
        """The next backend of the smooth weighted sequence."""
        rotation = self._rotations.get(candidates)
        schedule = rotation.schedule
        if schedule is None:
            return rotation.step()
        position = self._position
        self._position = position + 1
        return schedule[position % rotation.period]
