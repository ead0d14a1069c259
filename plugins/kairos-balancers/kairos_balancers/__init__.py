"""kairos-balancers: weighted round robin, least connections, random, power of two choices,
consistent hashing and latency-aware EWMA, each selectable per upstream pool."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kairos_balancers.consistent_hash import (
    ConsistentHash,
    ConsistentHashConfig,
    build_consistent_hash,
)
from kairos_balancers.ewma import EwmaConfig, PeakEwma, build_ewma
from kairos_balancers.least_connections import LeastConnections
from kairos_balancers.random_choice import PowerOfTwoChoices, RandomChoice
from kairos_balancers.weighted import SmoothWeightedRoundRobin
from kairos_core import BalancerPlugin, NoConfig, UpstreamPool, hookimpl

__all__ = [
    "PLUGINS",
    "ConsistentHash",
    "ConsistentHashConfig",
    "EwmaConfig",
    "LeastConnections",
    "PeakEwma",
    "PowerOfTwoChoices",
    "RandomChoice",
    "SmoothWeightedRoundRobin",
    "register_balancers",
]


def _weighted_round_robin(config: NoConfig, pool: UpstreamPool) -> SmoothWeightedRoundRobin:
    return SmoothWeightedRoundRobin(pool.candidates)


def _least_connections(config: NoConfig, pool: UpstreamPool) -> LeastConnections:
    return LeastConnections(pool.candidates)


def _random(config: NoConfig, pool: UpstreamPool) -> RandomChoice:
    return RandomChoice(pool.candidates)


def _power_of_two(config: NoConfig, pool: UpstreamPool) -> PowerOfTwoChoices:
    return PowerOfTwoChoices(pool.candidates)


PLUGINS: tuple[BalancerPlugin[Any], ...] = (
    BalancerPlugin(
        name="weighted_round_robin",
        build=_weighted_round_robin,
        description="Smooth weighted round robin (nginx): weight picks per period, interleaved.",
    ),
    BalancerPlugin(
        name="least_connections",
        build=_least_connections,
        description="Fewest requests in flight per unit of weight; ties in turn.",
    ),
    BalancerPlugin(
        name="random",
        build=_random,
        description="A random backend, chosen with probability proportional to weight.",
    ),
    BalancerPlugin(
        name="power_of_two",
        build=_power_of_two,
        description="The less loaded of two random backends.",
    ),
    BalancerPlugin(
        name="consistent_hash",
        build=build_consistent_hash,
        config_model=ConsistentHashConfig,
        description="Sticky by client IP, header, cookie or path (ring or Maglev).",
    ),
    BalancerPlugin(
        name="ewma",
        build=build_ewma,
        config_model=EwmaConfig,
        description="Latency-aware: peak EWMA of response time x load, two random choices.",
    ),
)


@hookimpl
def register_balancers(register: Callable[[BalancerPlugin[Any]], None]) -> None:
    """Register every balancer of this distribution."""
    for plugin in PLUGINS:
        register(plugin)
