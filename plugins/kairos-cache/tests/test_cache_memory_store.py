"""The in-memory LRU: bounded by bytes, least recently used out first, expiry by the clock."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from kairos_cache.entry import CachedResponse
from kairos_cache.stores import MemoryStore


def entry(size: int) -> CachedResponse:
    return CachedResponse(
        status=200,
        headers=(("Content-Type", "text/plain"),),
        body=b"b" * size,
        response_time=0.0,
        initial_age=0.0,
        freshness=60.0,
        stale_while_revalidate=0.0,
        stale_if_error=0.0,
        must_revalidate=False,
        etag=None,
        last_modified=None,
        vary=(),
        storage_ttl=60.0,
    )


async def test_bound_in_bytes_evicts_least_recently_used(clock: Any) -> None:
    store = MemoryStore(10_000, clock)
    for name in "abc":
        assert await store.put([(name, entry(3000), 60)]) > 3000
    assert store.bytes <= 10_000
    assert await store.get("a") is not None  # a is now the most recently used
    await store.put([("d", entry(3000), 60)])
    assert store.bytes <= 10_000
    assert await store.get("b") is None
    assert all([await store.get(k) is not None for k in "acd"])


async def test_too_big_for_the_bound_is_not_kept(clock: Any) -> None:
    store = MemoryStore(1000, clock)
    assert await store.put([("big", entry(5000), 60)]) == 0
    assert store.bytes == 0
    assert len(store) == 0


async def test_entries_expire_by_the_clock(clock: Any) -> None:
    store = MemoryStore(100_000, clock)
    await store.put([("k", entry(10), 5)])
    clock.advance(4.9)
    assert await store.get("k") is not None
    clock.advance(0.2)
    assert await store.get("k") is None
    assert store.bytes == 0


async def test_replacing_a_key_keeps_the_count_right(clock: Any) -> None:
    store = MemoryStore(100_000, clock)
    await store.put([("k", entry(1000), 60)])
    await store.put([("k", entry(2000), 60)])
    assert len(store) == 1
    assert 2000 < store.bytes < 3000


async def test_gateway_memory_stays_within_its_bound(
    cache_gateway: Any, origin: Any, fetch: Any
) -> None:
    for index in range(6):
        origin.handlers[f"/obj{index}"] = _blob
    gw = await cache_gateway({"memory": {"max_bytes": 300_000}, "max_object_size": 100_000})
    for index in range(6):
        assert (await fetch(f"{gw.url}/obj{index}"))[1]["X-Cache"] == "MISS"
    gauge = gw.gateway.metrics.snapshot()["kairos_cache_memory_bytes"]["values"]
    assert 0 < sum(gauge.values()) <= 300_000
    assert (await fetch(gw.url + "/obj5"))[1]["X-Cache"] == "HIT"
    assert (await fetch(gw.url + "/obj0"))[1]["X-Cache"] == "MISS"  # evicted


async def _blob(request: web.Request) -> web.Response:
    return web.Response(body=b"o" * 90_000, headers={"Cache-Control": "max-age=60"})
