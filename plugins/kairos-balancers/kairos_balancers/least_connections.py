"""Least connections: the backend with the fewest requests in flight (relative to its weight)."""

from __future__ import annotations

from collections.abc import Sequence

from kairos_balancers.candidate_cache import CandidateCache, Candidates, offered
from kairos_core import Backend, RequestContext


class LoadTable:
    """Weights of one candidate set and the smooth round-robin state that breaks ties."""

    __slots__ = ("backends", "current", "inverse", "uniform", "weights")

    def __init__(self, candidates: Candidates) -> None:
        self.backends, self.weights = offered(candidates)
        self.inverse = tuple(1.0 / w for w in self.weights)
        self.uniform = len(set(self.weights)) <= 1
        self.current = [0] * len(self.backends)


class LeastConnections:
    """Picks the least loaded backend by `in_flight / weight`, which the core keeps up to date.

    Ties (common at low load) go round the tied backends in turn, weighted like nginx's smooth
    round robin, so an idle pool still spreads requests by weight. Each pick reads every
    candidate's count (O(n)): the core updates the counters directly, so there is no change
    notification to keep a heap on; `power_of_two` is the O(1) alternative for large pools.
    """

    __slots__ = ("_next", "_tables")

    def __init__(self, candidates: Sequence[Backend] = ()) -> None:
        self._tables: CandidateCache[LoadTable] = CandidateCache(LoadTable)
        self._next = 0
        if candidates:
            self._tables.get(candidates)

    def pick(self, ctx: RequestContext | None, candidates: Sequence[Backend]) -> Backend | None:
        """The least loaded backend; ties taken in turn."""
        if len(candidates) == 1:
            return candidates[0]
        table = self._tables.get(candidates)
        backends = table.backends
        count = len(backends)
        if count == 1:
            return backends[0]
        if table.uniform:
            return self._pick_uniform(backends, count)
        return self._pick_weighted(backends, table)

    def _pick_uniform(self, candidates: Sequence[Backend], count: int) -> Backend:
        loads = [b.in_flight for b in candidates]
        least = min(loads)
        index = loads.index(least)
        start = self._next % count
        if index < start and loads.count(least) > 1:
            later = loads[start:]
            if least in later:
                index = start + later.index(least)
        self._next = index + 1
        return candidates[index]

    def _pick_weighted(self, candidates: Sequence[Backend], table: LoadTable) -> Backend:
        loads = [b.in_flight * w for b, w in zip(candidates, table.inverse, strict=True)]
        least = min(loads)
        index = loads.index(least)
        ties = loads.count(least)
        if ties == 1:
            return candidates[index]
        weights = table.weights
        current = table.current
        best = index
        best_weight = current[index] + weights[index]
        current[index] = best_weight
        tied_total = weights[index]
        for _ in range(ties - 1):
            index = loads.index(least, index + 1)
            weight = weights[index]
            tied_total += weight
            value = current[index] + weight
            current[index] = value
            if value > best_weight:
                best, best_weight = index, value
        current[best] -= tied_total
        return candidates[best]
