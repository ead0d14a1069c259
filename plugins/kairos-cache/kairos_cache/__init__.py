"""Kairos response cache: RFC 9111 caching with memory and Redis stores, as the `cache` stage."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kairos_cache.build import build_cache
from kairos_cache.cache import ResponseCache
from kairos_cache.config import CacheConfig
from kairos_cache.purge import ADMIN_ROUTE
from kairos_core import AdminRoute, BuildContext, Phase, StagePlugin, hookimpl

__all__ = ["CacheConfig", "CachePlugin", "ResponseCache"]


class CachePlugin:
    """The plugin object; tests build one with their own clock (`CachePlugin(clock=fake)`)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock

    def build(self, config: CacheConfig, context: BuildContext) -> ResponseCache:
        """Build one `cache` entry with this plugin's clock."""
        return build_cache(config, context, self.clock)

    @hookimpl
    def register_caches(self, register: Callable[[StagePlugin[Any]], None]) -> None:
        """Register the `cache` stage."""
        register(
            StagePlugin(
                name="cache",
                build=self.build,
                config_model=CacheConfig,
                phase=Phase.CACHE,
                description="HTTP response cache (RFC 9111) on memory or Redis.",
            )
        )

    @hookimpl
    def register_admin_routes(self, register: Callable[[AdminRoute], None]) -> None:
        """Register `POST /cache/purge`."""
        register(ADMIN_ROUTE)


_DEFAULT = CachePlugin()


@hookimpl
def register_caches(register: Callable[[StagePlugin[Any]], None]) -> None:
    """Register the `cache` stage (wall-clock time)."""
    _DEFAULT.register_caches(register)


@hookimpl
def register_admin_routes(register: Callable[[AdminRoute], None]) -> None:
    """Register `POST /cache/purge`."""
    _DEFAULT.register_admin_routes(register)
