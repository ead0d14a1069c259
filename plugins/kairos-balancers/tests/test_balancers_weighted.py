"""Smooth weighted round robin at unit level: nginx's exact order, periods, live fallback."""

from __future__ import annotations

from collections import Counter

from kairos_balancers import SmoothWeightedRoundRobin
from kairos_balancers.weighted import MAX_PERIOD, Rotation, smooth_schedule


def picks(balancer, candidates, count):
    return [balancer.pick(None, candidates).name for _ in range(count)]


def test_nginx_example_order(make_backends) -> None:
    backends = make_backends("a", "b", "c", weights=[5, 1, 1])
    balancer = SmoothWeightedRoundRobin(backends)
    assert picks(balancer, backends, 14) == list("aabacaa" * 2)


def test_each_period_honours_weights(make_backends) -> None:
    backends = make_backends("a", "b", "c", "d", weights=[4, 3, 2, 1])
    balancer = SmoothWeightedRoundRobin(backends)
    for _ in range(5):
        assert Counter(picks(balancer, backends, 10)) == {"a": 4, "b": 3, "c": 2, "d": 1}


def test_equal_weights_are_plain_rotation_and_gcd_is_reduced(make_backends) -> None:
    backends = make_backends("a", "b", "c", weights=[10, 10, 10])
    balancer = SmoothWeightedRoundRobin(backends)
    assert picks(balancer, backends, 6) == list("abcabc")
    assert Rotation(backends).period == 3


def test_heavy_backend_is_interleaved_not_bursted(make_backends) -> None:
    backends = make_backends("a", "b", weights=[3, 1])
    assert picks(SmoothWeightedRoundRobin(backends), backends, 8) == list("aaba" * 2)


def test_candidate_set_change_switches_schedule(make_backends) -> None:
    a, b, c = make_backends("a", "b", "c", weights=[2, 1, 1])
    balancer = SmoothWeightedRoundRobin((a, b, c))
    picks(balancer, (a, b, c), 3)
    without_a = (b, c)
    assert Counter(picks(balancer, without_a, 10)) == {"b": 5, "c": 5}
    assert Counter(picks(balancer, (a, b, c), 40)) == {"a": 20, "b": 10, "c": 10}


def test_long_periods_run_live_with_the_same_sequence(make_backends) -> None:
    weights = [MAX_PERIOD, MAX_PERIOD - 1, 7]
    backends = make_backends("a", "b", "c", weights=weights)
    rotation = Rotation(backends)
    assert rotation.schedule is None
    expected = ["abc"[i] for i in smooth_schedule(weights)[:3000]]
    assert picks(SmoothWeightedRoundRobin(backends), backends, 3000) == expected


def test_ignores_a_missing_context(make_backends) -> None:
    (only,) = make_backends("a")
    assert SmoothWeightedRoundRobin().pick(None, (only,)) is only
