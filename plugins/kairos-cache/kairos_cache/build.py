"""Build a `cache` entry from its config: store, policy, key function, metrics, purge command."""

from __future__ import annotations

from collections.abc import Callable

from kairos_cache.cache import ResponseCache
from kairos_cache.config import CacheConfig
from kairos_cache.entry import Policy
from kairos_cache.fetch import Fetcher
from kairos_cache.keys import key_builder
from kairos_cache.metrics import CacheMetrics
from kairos_cache.purge import COMMAND, CacheRegistry
from kairos_cache.redis_store import RedisStore
from kairos_cache.stores import CacheStore, MemoryStore
from kairos_cache.tiered_store import TieredStore
from kairos_core import BuildContext

SHARED_KEY = "cache"


def build_cache(
    config: CacheConfig, context: BuildContext, clock: Callable[[], float]
) -> ResponseCache:
    """One cache instance; no I/O happens here (Redis connects on first use)."""
    services = context.services
    registry = services.shared.get(SHARED_KEY)
    if not isinstance(registry, CacheRegistry):
        registry = CacheRegistry()
        services.shared[SHARED_KEY] = registry
        services.commands[COMMAND] = registry.purge
    metrics = CacheMetrics(services)
    store: CacheStore
    if config.backend == "redis":
        redis = config.redis
        remote = RedisStore(
            registry.redis,
            redis.url,
            redis.namespace,
            timeout=redis.timeout,
            retry_after=redis.retry_after,
            compress_min=int(redis.compress_min_size) if redis.compress else None,
            compress_level=redis.compress_level,
        )
        if redis.local_ttl > 0:
            local = MemoryStore(int(redis.local_max_bytes), clock)
            metrics.watch_memory(context.route_name or "global", lambda: float(local.bytes))
            store = TieredStore(local, remote, redis.local_ttl)
        else:
            store = remote
    else:
        memory = MemoryStore(int(config.memory.max_bytes), clock)
        metrics.watch_memory(context.route_name or "global", lambda: float(memory.bytes))
        store = memory
    registry.stores.append(store)
    policy = Policy(
        statuses=frozenset(config.statuses),
        default_ttl=config.default_ttl,
        force_ttl=config.force_ttl,
        stale_while_revalidate=config.stale_while_revalidate,
        stale_if_error=config.stale_if_error,
        revalidate_window=config.revalidate_window,
    )
    key = config.key
    return ResponseCache(
        store=store,
        fetcher=Fetcher(store, policy, clock, int(config.max_object_size), config.coalesce),
        clock=clock,
        metrics=metrics,
        key=key_builder(key.query, key.headers, key.host),
        route_name=context.route_name,
        allow_credentials=config.allow_credentials,
        request_directives=config.request_directives,
        invalidate_on_unsafe=config.invalidate_on_unsafe,
        expose_key=config.expose_key,
    )
