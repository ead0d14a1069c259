"""kairos-ai: a balancer that asks an LLM (any OpenAI-compatible endpoint) which backend to use."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kairos_ai.balancer import DECISION_KEY, AiBalancer, Decision
from kairos_ai.config import AiBalancerConfig, DecisionHeaderConfig
from kairos_ai.decision_header import build_decision_header
from kairos_core import BalancerPlugin, GatewayServices, StagePlugin, UpstreamPool, hookimpl

__all__ = [
    "DECISION_KEY",
    "AiBalancer",
    "AiBalancerConfig",
    "Decision",
    "DecisionHeaderConfig",
]


def build_balancer(config: AiBalancerConfig, pool: UpstreamPool) -> AiBalancer:
    """Build the `ai` balancer of one upstream pool."""
    return AiBalancer(config, pool)


@hookimpl
def register_balancers(register: Callable[[BalancerPlugin[Any]], None]) -> None:
    """Register the `ai` balancer."""
    register(
        BalancerPlugin(
            name="ai",
            build=build_balancer,
            config_model=AiBalancerConfig,
            description="An LLM picks the backend from a description of each; a fallback "
            "strategy decides when it is slow, down or unsure.",
        )
    )


@hookimpl
def register_transformers(register: Callable[[StagePlugin[Any]], None]) -> None:
    """Register `ai-decision-header`, which names how the backend was chosen in a response header."""
    register(
        StagePlugin(
            name="ai-decision-header",
            build=build_decision_header,
            config_model=DecisionHeaderConfig,
            description="Response header saying whether the model, the cache or the fallback "
            "chose the backend.",
        )
    )


@hookimpl
def kairos_startup(services: GatewayServices) -> None:
    """Point every `ai` balancer of the new configuration at the gateway's metrics."""
    for pool in services.pools.values():
        if isinstance(pool.balancer, AiBalancer):
            pool.balancer.bind(services)
