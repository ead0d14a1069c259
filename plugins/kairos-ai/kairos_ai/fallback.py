"""Cheap strategies that decide whenever the model does not: each always returns a candidate."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from kairos_core import Backend

Strategy = Callable[[Sequence[Backend]], Backend]


def round_robin() -> Strategy:
    """Each candidate in turn."""
    counter = 0

    def pick(candidates: Sequence[Backend]) -> Backend:
        nonlocal counter
        counter += 1
        return candidates[counter % len(candidates)]

    return pick


def weighted_random() -> Strategy:
    """A random candidate, in proportion to its weight."""

    def pick(candidates: Sequence[Backend]) -> Backend:
        if len(candidates) == 1:
            return candidates[0]
        return random.choices(candidates, weights=[b.weight for b in candidates])[0]

    return pick


def first() -> Strategy:
    """The first candidate in configuration order (ordered failover)."""
    return lambda candidates: candidates[0]


def least_connections() -> Strategy:
    """The candidate with the fewest requests in flight per unit of weight."""
    return lambda candidates: min(candidates, key=lambda b: b.in_flight / max(b.weight, 1))


STRATEGIES: dict[str, Callable[[], Strategy]] = {
    "round_robin": round_robin,
    "random": weighted_random,
    "first": first,
    "least_connections": least_connections,
}
