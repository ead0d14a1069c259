"""kairos-ratelimit: rate and concurrency limits in memory (shared by workers) or in Redis.

Two components with the same settings: `rate-limit` runs in the traffic phase, after
authentication (so it can count by consumer or claim); `rate-limit-pre-auth` runs before
authentication, to shed per-IP floods before any credential is checked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kairos_core import BuildContext, Middleware, Phase, StagePlugin, hookimpl
from kairos_ratelimit.config import LimitSpec, RateLimitConfig
from kairos_ratelimit.stage import RateLimitStage

__all__ = ["LimitSpec", "RateLimitConfig", "RateLimitStage", "register_rate_limiters"]


def build_rate_limit(config: RateLimitConfig, context: BuildContext) -> Middleware:
    """The `rate-limit` stage for one entry (after authentication)."""
    return RateLimitStage("rate-limit", config, context)


def build_pre_auth(config: RateLimitConfig, context: BuildContext) -> Middleware:
    """The `rate-limit-pre-auth` stage for one entry (before authentication)."""
    return RateLimitStage("rate-limit-pre-auth", config, context)


@hookimpl
def register_rate_limiters(register: Callable[[StagePlugin[Any]], None]) -> None:
    """Register `rate-limit` (traffic phase) and `rate-limit-pre-auth` (pre-auth phase)."""
    register(
        StagePlugin(
            name="rate-limit",
            build=build_rate_limit,
            config_model=RateLimitConfig,
            priority=100,
            description="Rate and concurrency limits by IP, consumer, route, header or claim.",
        )
    )
    register(
        StagePlugin(
            name="rate-limit-pre-auth",
            build=build_pre_auth,
            config_model=RateLimitConfig,
            phase=Phase.PRE_AUTH,
            priority=50,
            description="Rate limits checked before authentication (per IP, route or header).",
        )
    )
