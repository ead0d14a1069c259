"""The EWMA balancer at unit level, on an injected clock: estimates, peaks, decay, penalties."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest
from kairos_balancers import EwmaConfig, PeakEwma
from pydantic import ValidationError


class Clock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def ewma(backends, clock, **config) -> PeakEwma:
    return PeakEwma(EwmaConfig(**config), backends, clock=clock, rng=random.Random(5))


def test_prefers_the_faster_backend(make_backends, clock) -> None:
    fast, _slow = backends = make_backends("fast", "slow")
    balancer = ewma(backends, clock)
    picked = Counter()
    for _ in range(200):
        backend = balancer.pick(None, backends)
        picked[backend.name] += 1
        balancer.observe(backend, 0.002 if backend is fast else 0.050, True)
        clock.now += 0.01
    assert picked["slow"] <= 2
    assert picked["fast"] >= 198


def test_unsampled_backends_are_tried_first_but_not_piled_on(make_backends, clock) -> None:
    known, fresh = backends = make_backends("known", "fresh")
    balancer = ewma(backends, clock)
    balancer.observe(known, 0.010, True)
    assert balancer.pick(None, backends) is fresh
    fresh.in_flight = 1
    assert balancer.pick(None, backends) is known


def test_load_multiplies_latency(make_backends, clock) -> None:
    a, b = backends = make_backends("a", "b")
    balancer = ewma(backends, clock)
    balancer.observe(a, 0.010, True)
    balancer.observe(b, 0.025, True)
    assert balancer.pick(None, backends) is a
    a.in_flight = 2
    assert balancer.pick(None, backends) is b


def test_a_slower_sample_takes_over_at_once_faster_ones_blend_in(make_backends, clock) -> None:
    (a,) = backends = make_backends("a")
    balancer = ewma(backends, clock, decay_time=10.0)
    balancer.observe(a, 0.010, True)
    clock.now += 0.001
    balancer.observe(a, 0.200, True)
    assert balancer.latency(a) == pytest.approx(0.200)
    clock.now += 1.0
    balancer.observe(a, 0.010, True)
    keep = math.exp(-0.1)
    assert balancer.latency(a) == pytest.approx(0.200 * keep + 0.010 * (1 - keep))


def test_an_idle_slow_backend_decays_and_is_retried(make_backends, clock) -> None:
    fast, slow = backends = make_backends("fast", "slow")
    balancer = ewma(backends, clock, decay_time=1.0)
    balancer.observe(slow, 0.5, True)
    for _ in range(100):
        balancer.observe(fast, 0.01, True)
        assert balancer.pick(None, backends) is fast
        clock.now += 0.01
    clock.now += 5.0
    balancer.observe(fast, 0.01, True)
    assert balancer.latency(slow) == pytest.approx(0.5 * math.exp(-6.0), rel=1e-6)
    assert balancer.pick(None, backends) is slow


def test_fast_failures_count_as_slow(make_backends, clock) -> None:
    failing, healthy = backends = make_backends("failing", "healthy")
    balancer = ewma(backends, clock, failure_penalty=1.0)
    balancer.observe(failing, 0.001, False)
    balancer.observe(healthy, 0.050, True)
    assert balancer.latency(failing) == pytest.approx(1.0)
    assert {balancer.pick(None, backends).name for _ in range(20)} == {"healthy"}


def test_weight_scales_cost(make_backends, clock) -> None:
    heavy, light = backends = make_backends("heavy", "light", weights=[4, 1])
    balancer = ewma(backends, clock)
    balancer.observe(heavy, 0.030, True)
    balancer.observe(light, 0.010, True)
    assert balancer.pick(None, backends) is heavy


def test_spread_between_equal_backends(make_backends, clock) -> None:
    backends = make_backends("a", "b", "c")
    balancer = ewma(backends, clock)
    for backend in backends:
        balancer.observe(backend, 0.01, True)
    counts = Counter(balancer.pick(None, backends).name for _ in range(3000))
    assert all(800 < n < 1200 for n in counts.values())


def test_backend_unknown_at_build_time_is_tracked(make_backends, clock) -> None:
    (a,) = make_backends("a")
    balancer = PeakEwma(EwmaConfig(), clock=clock)
    balancer.observe(a, 0.02, True)
    assert balancer.latency(a) == pytest.approx(0.02)
    assert balancer.pick(None, (a,)) is a


@pytest.mark.parametrize("config", [{"decay_time": 0}, {"failure_penalty": -1}, {"tau": 1}])
def test_config_errors(config) -> None:
    with pytest.raises(ValidationError):
        EwmaConfig(**config)
