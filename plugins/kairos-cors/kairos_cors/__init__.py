"""kairos-cors: cross-origin resource sharing answered at the gateway, before authentication."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kairos_core import Phase, StagePlugin, hookimpl
from kairos_cors.config import CorsConfig
from kairos_cors.origins import OriginMatcher
from kairos_cors.stage import build

__all__ = ["CorsConfig", "OriginMatcher", "build"]


@hookimpl
def register_filters(register: Callable[[StagePlugin[Any]], None]) -> None:
    """Register the `cors` stage (pre-auth, outermost of that phase)."""
    register(
        StagePlugin(
            name="cors",
            build=build,
            config_model=CorsConfig,
            phase=Phase.PRE_AUTH,
            priority=300,
            description="CORS headers and preflight answers at the gateway.",
        )
    )
