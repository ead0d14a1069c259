"""Panic mode offers every backend, drained (weight 0) ones included: balancers leave those
out while any backend has weight, and spread evenly when all are weight 0."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from kairos_balancers import (
    ConsistentHash,
    ConsistentHashConfig,
    EwmaConfig,
    LeastConnections,
    PeakEwma,
    PowerOfTwoChoices,
    RandomChoice,
    SmoothWeightedRoundRobin,
)
from kairos_balancers.candidate_cache import offered

from kairos_core.testing import echo_app

BUILDERS = {
    "weighted_round_robin": lambda b: SmoothWeightedRoundRobin(b),
    "least_connections": lambda b: LeastConnections(b),
    "random": lambda b: RandomChoice(b, rng=random.Random(2)),
    "power_of_two": lambda b: PowerOfTwoChoices(b, rng=random.Random(2)),
    "consistent_hash ring": lambda b: ConsistentHash(ConsistentHashConfig(), b),
    "consistent_hash maglev": lambda b: ConsistentHash(
        ConsistentHashConfig(algorithm="maglev", table_size=1009), b
    ),
    "ewma": lambda b: PeakEwma(EwmaConfig(), b, rng=random.Random(2)),
}


def test_offered_keeps_weighted_backends_or_all_when_none_has_weight(make_backends) -> None:
    a, _b, c = backends = make_backends("a", "b", "c", weights=[2, 0, 1])
    assert offered(backends) == ((a, c), (2, 1))
    drained = make_backends("x", "y", weights=[0, 0])
    assert offered(drained) == (drained, (1, 1))


@pytest.mark.parametrize("name", BUILDERS)
def test_weight_zero_backends_get_nothing_while_others_have_weight(
    make_backends, make_request, name
) -> None:
    backends = make_backends("a", "drained", "c", weights=[1, 0, 1])
    balancer = BUILDERS[name](backends)
    picked = Counter(
        balancer.pick(make_request(client_ip=f"10.0.{n // 250}.{n % 250}"), backends).name
        for n in range(600)
    )
    assert picked["drained"] == 0
    assert picked["a"] > 100
    assert picked["c"] > 100


@pytest.mark.parametrize("name", BUILDERS)
def test_all_weight_zero_spreads_over_all(make_backends, make_request, name) -> None:
    backends = make_backends("a", "b", "c", weights=[0, 0, 0])
    balancer = BUILDERS[name](backends)
    picked = Counter(
        balancer.pick(make_request(client_ip=f"10.1.{n // 250}.{n % 250}"), backends).name
        for n in range(600)
    )
    assert set(picked) == {"a", "b", "c"}
    assert min(picked.values()) > 100


@pytest.mark.parametrize(
    "balancer",
    ["weighted_round_robin", "least_connections", "random", "power_of_two", "ewma"],
)
async def test_panic_mode_through_the_gateway(
    kairos_gateway, backend_factory, http, balancer
) -> None:
    a, drained, c = [await backend_factory(echo_app(name)) for name in ("a", "drained", "c")]
    pool = {
        "balancer": balancer,
        "panic_mode": True,
        "backends": [
            {"url": a.url, "name": "a"},
            {"url": drained.url, "name": "drained", "weight": 0},
            {"url": c.url, "name": "c"},
        ],
    }
    gw = await kairos_gateway(
        {"upstreams": {"app": pool}, "routes": [{"prefix": "/", "upstream": "app"}]}
    )
    for backend in gw.gateway.runtime.pools["app"].backends:
        backend.set_healthy(False)
    served = Counter()
    for _ in range(40):
        async with http.get(gw.url + "/") as response:
            assert response.status == 200
            served[response.headers["X-Backend"]] += 1
    assert served["drained"] == 0
    assert served["a"] + served["c"] == 40
