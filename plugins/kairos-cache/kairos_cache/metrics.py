"""The cache's metric families and their per-route children (resolved once per route)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kairos_core import GatewayServices


@dataclass(slots=True)
class RouteCounters:
    """The counters one route increments per request."""

    hit: Any
    miss: Any
    stale: Any
    bypass: Any
    stored_bytes: Any
    store_errors: Any


class CacheMetrics:
    """Counters for hits, misses, stale answers, bypasses and bytes stored, per route."""

    def __init__(self, services: GatewayServices) -> None:
        metrics = services.metrics
        self._requests = metrics.counter(
            "kairos_cache_requests", "Cacheable requests by outcome (X-Cache).", ["route", "result"]
        )
        self._stored = metrics.counter(
            "kairos_cache_stored_bytes", "Bytes of responses written to the cache store.", ["route"]
        )
        self._errors = metrics.counter(
            "kairos_cache_store_errors", "Cache store calls that failed (store down).", ["route"]
        )
        self._memory = metrics.gauge(
            "kairos_cache_memory_bytes", "Bytes held by in-memory cache stores.", ["cache"]
        )
        self._routes: dict[str, RouteCounters] = {}

    def route(self, name: str) -> RouteCounters:
        """The counters of route `name` (created on first use, then a dict lookup)."""
        found = self._routes.get(name)
        if found is None:
            requests = self._requests
            found = RouteCounters(
                hit=requests.labels(name, "hit"),
                miss=requests.labels(name, "miss"),
                stale=requests.labels(name, "stale"),
                bypass=requests.labels(name, "bypass"),
                stored_bytes=self._stored.labels(name),
                store_errors=self._errors.labels(name),
            )
            self._routes[name] = found
        return found

    def watch_memory(self, cache: str, read: Any) -> None:
        """Report a memory store's current size under `cache` at scrape time."""
        self._memory.labels(cache).set_function(read)
