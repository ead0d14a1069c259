"""Least connections, random and power of two choices at unit level, on set in-flight counts."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from kairos_balancers import LeastConnections, PowerOfTwoChoices, RandomChoice


def names(balancer, candidates, count):
    return [balancer.pick(None, candidates).name for _ in range(count)]


def test_least_connections_takes_the_idlest(make_backends) -> None:
    a, b, c = backends = make_backends("a", "b", "c")
    a.in_flight, b.in_flight, c.in_flight = 3, 1, 2
    assert LeastConnections(backends).pick(None, backends) is b


def test_least_connections_rotates_through_ties(make_backends) -> None:
    _a, b, _c = backends = make_backends("a", "b", "c")
    balancer = LeastConnections(backends)
    assert names(balancer, backends, 6) == list("abcabc")
    b.in_flight = 1
    assert names(balancer, backends, 4) == list("acac")


def test_least_connections_divides_load_by_weight(make_backends) -> None:
    a, b = backends = make_backends("a", "b", weights=[3, 1])
    balancer = LeastConnections(backends)
    a.in_flight, b.in_flight = 2, 1
    assert balancer.pick(None, backends) is a
    a.in_flight = 4
    assert balancer.pick(None, backends) is b


def test_least_connections_weighted_ties_follow_weights(make_backends) -> None:
    backends = make_backends("a", "b", weights=[3, 1])
    assert Counter(names(LeastConnections(backends), backends, 40)) == {"a": 30, "b": 10}


def test_least_connections_follows_counts_as_they_change(make_backends) -> None:
    backends = make_backends("a", "b", "c")
    balancer = LeastConnections(backends)
    for _ in range(30):
        chosen = balancer.pick(None, backends)
        chosen.in_flight += 1
    assert [b.in_flight for b in backends] == [10, 10, 10]
    backends[0].in_flight -= 5
    assert {balancer.pick(None, backends).name for _ in range(3)} == {"a"}


@pytest.mark.parametrize("weights", [[1, 1, 1], [2, 1, 1], [5, 3, 1, 1]])
def test_random_shares_follow_weights(make_backends, weights) -> None:
    backends = make_backends(*"abcd"[: len(weights)], weights=weights)
    balancer = RandomChoice(backends, rng=random.Random(7))
    draws = 40_000
    counts = Counter(names(balancer, backends, draws))
    for backend, weight in zip(backends, weights, strict=True):
        expected = draws * weight / sum(weights)
        assert abs(counts[backend.name] - expected) < 5 * expected**0.5


def test_power_of_two_never_picks_the_busiest_of_distinct_pairs(make_backends) -> None:
    a, _b, _c = backends = make_backends("a", "b", "c")
    a.in_flight = 5
    balancer = PowerOfTwoChoices(backends, rng=random.Random(3))
    counts = Counter(names(balancer, backends, 3000))
    assert counts["a"] == 0
    assert abs(counts["b"] - counts["c"]) < 300


def test_power_of_two_prefers_less_load_per_weight(make_backends) -> None:
    a, b = backends = make_backends("a", "b", weights=[4, 1])
    a.in_flight, b.in_flight = 3, 1
    balancer = PowerOfTwoChoices(backends, rng=random.Random(1))
    assert set(names(balancer, backends, 50)) == {"a"}


def test_power_of_two_idle_shares_follow_weights(make_backends) -> None:
    backends = make_backends("a", "b", "c", weights=[2, 1, 1])
    balancer = PowerOfTwoChoices(backends, rng=random.Random(11))
    counts = Counter(names(balancer, backends, 40_000))
    assert abs(counts["a"] / 40_000 - 0.5) < 0.02


def test_single_candidate_and_missing_context(make_backends) -> None:
    (only,) = make_backends("a")
    for balancer in (LeastConnections(), RandomChoice(), PowerOfTwoChoices()):
        assert balancer.pick(None, (only,)) is only
