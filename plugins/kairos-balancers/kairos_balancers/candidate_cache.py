"""State precomputed per candidate set, so a pick stays O(1) while pool health is unchanged."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from kairos_core import Backend

T = TypeVar("T")

Candidates = tuple[Backend, ...]


class CandidateCache(Generic[T]):
    """Builds state once per distinct candidate tuple and keeps the most recent ones.

    The pool hands out the same tuple object until a backend's health changes, so the hot path
    is one identity check; a new tuple (a health change, or a retry excluding a backend) costs
    one dict lookup and, the first time it is seen, one build.
    """

    __slots__ = ("_build", "_entries", "_last", "_limit")

    def __init__(self, build: Callable[[Candidates], T], limit: int = 32) -> None:
        self._build = build
        self._entries: dict[Candidates, T] = {}
        self._last: tuple[Sequence[Backend], T] | None = None
        self._limit = limit

    def get(self, candidates: Sequence[Backend]) -> T:
        """The state for `candidates`, built on first sight."""
        last = self._last
        if last is not None and last[0] is candidates:
            return last[1]
        key = candidates if isinstance(candidates, tuple) else tuple(candidates)
        value = self._entries.get(key)
        if value is None:
            value = self._build(key)
            if len(self._entries) >= self._limit:
                del self._entries[next(iter(self._entries))]
            self._entries[key] = value
        if isinstance(candidates, tuple):
            self._last = (candidates, value)
        return value

    def __len__(self) -> int:
        return len(self._entries)


def offered(candidates: Candidates) -> tuple[Candidates, tuple[int, ...]]:
    """The backends a balancer may pick from, with the weights to use.

    Candidates normally all have weight > 0. In panic mode the pool offers every backend;
    weight-0 (drained) ones are then left out unless all are weight 0, when all count as 1.
    """
    weights = tuple(b.weight for b in candidates)
    if all(w > 0 for w in weights):
        return candidates, weights
    if not any(w > 0 for w in weights):
        return candidates, (1,) * len(candidates)
    kept = [(b, w) for b, w in zip(candidates, weights, strict=True) if w > 0]
    return tuple(b for b, _ in kept), tuple(w for _, w in kept)
