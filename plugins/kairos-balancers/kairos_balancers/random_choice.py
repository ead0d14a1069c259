"""Weighted random choice, and the power of two random choices on requests in flight."""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate

from kairos_balancers.candidate_cache import CandidateCache, Candidates, offered
from kairos_core import Backend, RequestContext


class WeightTable:
    """Cumulative weights of one candidate set, for O(log n) weighted sampling."""

    __slots__ = ("backends", "cumulative", "inverse", "total", "uniform")

    def __init__(self, candidates: Candidates) -> None:
        self.backends, weights = offered(candidates)
        self.cumulative = list(accumulate(weights))
        self.total = self.cumulative[-1] if weights else 0
        self.inverse = tuple(1.0 / w for w in weights)
        self.uniform = len(set(weights)) <= 1

    def sample(self, draw: float) -> int:
        """The index that `draw` (uniform in [0, 1)) lands on, by weight."""
        return bisect_right(self.cumulative, draw * self.total)


class RandomChoice:
    """Each request goes to a random backend, with probability proportional to its weight."""

    __slots__ = ("_random", "_tables")

    def __init__(
        self, candidates: Sequence[Backend] = (), rng: random.Random | None = None
    ) -> None:
        self._tables: CandidateCache[WeightTable] = CandidateCache(WeightTable)
        self._random = (rng or random.Random()).random
        if candidates:
            self._tables.get(candidates)

    def pick(self, ctx: RequestContext | None, candidates: Sequence[Backend]) -> Backend | None:
        """A weighted random backend."""
        table = self._tables.get(candidates)
        backends = table.backends
        if table.uniform:
            return backends[int(self._random() * len(backends))]
        return backends[table.sample(self._random())]


class PowerOfTwoChoices:
    """Samples two distinct backends (by weight) and takes the one with less load per weight.

    Close to least connections in effect at O(1) per pick; with several workers, each seeing
    only its own counts, it herds less onto one idle backend than an exact minimum does.
    """

    __slots__ = ("_random", "_tables")

    def __init__(
        self, candidates: Sequence[Backend] = (), rng: random.Random | None = None
    ) -> None:
        self._tables: CandidateCache[WeightTable] = CandidateCache(WeightTable)
        self._random = (rng or random.Random()).random
        if candidates:
            self._tables.get(candidates)

    def pick(self, ctx: RequestContext | None, candidates: Sequence[Backend]) -> Backend | None:
        """The less loaded of two random backends; the first drawn on a tie."""
        if len(candidates) == 1:
            return candidates[0]
        table = self._tables.get(candidates)
        candidates = table.backends
        count = len(candidates)
        if count == 1:
            return candidates[0]
        draw = self._random
        if table.uniform:
            first = int(draw() * count)
            second = int(draw() * (count - 1))
            if second >= first:
                second += 1
            a, b = candidates[first], candidates[second]
            return b if b.in_flight < a.in_flight else a
        first = table.sample(draw())
        second = table.sample(draw())
        if second == first:
            second = (first + 1 + int(draw() * (count - 1))) % count
        inverse = table.inverse
        a, b = candidates[first], candidates[second]
        return b if b.in_flight * inverse[second] < a.in_flight * inverse[first] else a
