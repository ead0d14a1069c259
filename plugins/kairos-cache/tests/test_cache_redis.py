"""The Redis store: shared across processes, compressed on request, bypassed while Redis is down."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import redis.asyncio as aioredis
import yaml
from aiohttp import web
from kairos_cache import CachePlugin

from kairos_core.testing import GatewayProcess, require_service
from kairos_core.testing.process import free_port

pytestmark = pytest.mark.redis


@pytest_asyncio.fixture
async def namespace(redis_url: str) -> AsyncIterator[str]:
    """A key prefix of our own on the shared Redis, emptied afterwards."""
    prefix = f"kairos-test:{uuid.uuid4().hex}:"
    yield prefix
    client = aioredis.Redis.from_url(redis_url)
    keys = [key async for key in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def redis_cache(url: str, namespace: str, **extra: Any) -> dict[str, Any]:
    return {"backend": "redis", "redis": {"url": url, "namespace": namespace, **extra}}


async def test_redis_hit_vary_and_compression(
    cache_gateway: Any, origin: Any, clock: Any, fetch: Any, redis_url: str, namespace: str
) -> None:
    @origin.route("/doc")
    async def doc(request: web.Request) -> web.Response:
        lang = request.headers.get("Accept-Language", "-")
        return web.Response(
            text=f"{lang}:" + "text " * 1000,
            headers={
                "Cache-Control": "max-age=60",
                "Vary": "Accept-Language",
                "Date": clock.http_date(),
            },
        )

    gw = await cache_gateway(redis_cache(redis_url, namespace, compress=True))
    for lang in ("en", "fr"):
        assert (await fetch(gw.url + "/doc", headers={"Accept-Language": lang}))[1][
            "X-Cache"
        ] == "MISS"
    for lang in ("en", "fr"):
        _, headers, body = await fetch(gw.url + "/doc", headers={"Accept-Language": lang})
        assert (headers["X-Cache"], body[:3]) == ("HIT", f"{lang}:")
        assert len(body) == 3 + 5000
    assert origin.hits["/doc"] == 2
    client = aioredis.Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=namespace + "*")]
        assert len(keys) == 3  # the Vary marker and two variants
        values = [await client.get(key) for key in keys]
    finally:
        await client.aclose()
    big = max(values, key=len)
    assert big.startswith(b"KC2\x01")  # compressed
    assert len(big) < 1000


async def test_two_gateway_processes_share_one_redis(
    origin: Any, fetch: Any, redis_url: str, namespace: str, tmp_path: Path
) -> None:
    origin.counting("/shared", {"Cache-Control": "max-age=60"})
    config = {
        "listeners": [{"host": "127.0.0.1", "port": 0}],
        "admin": {"enabled": False},
        "routes": [
            {
                "name": "shared",
                "prefix": "/",
                "upstream": {"backends": [{"url": origin.url}]},
                "plugins": [
                    {
                        "name": "cache",
                        "config": {**redis_cache(redis_url, namespace), "key": {"host": False}},
                    }
                ],
            }
        ],
    }
    path = tmp_path / "kairos.yaml"
    path.write_text(yaml.safe_dump(config))
    first = GatewayProcess(["--config", str(path)])
    second = GatewayProcess(["--config", str(path)])
    try:
        await asyncio.gather(first.start(), second.start())
        _, headers, body = await fetch(first.url + "/shared")
        assert (headers["X-Cache"], body) == ("MISS", "n=1")
        client = aioredis.Redis.from_url(redis_url)
        try:  # the entry is written once the body has been sent: wait for it to land
            for _ in range(100):
                if [key async for key in client.scan_iter(match=namespace + "*")]:
                    break
                await asyncio.sleep(0.02)
        finally:
            await client.aclose()
        _, headers, body = await fetch(second.url + "/shared")
        assert (headers["X-Cache"], body) == ("HIT", "n=1")
        assert origin.hits["/shared"] == 1
    finally:
        await asyncio.gather(first.stop(), second.stop())


class RedisServer:
    """A redis-server of this test's own on a free port, to stop and start at will."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None
        self.proc = await asyncio.create_subprocess_exec(
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        client = aioredis.Redis.from_url(self.url)
        try:
            for _ in range(500):
                try:
                    if await client.ping():
                        return
                except (aioredis.ConnectionError, OSError):
                    await asyncio.sleep(0.01)
            raise RuntimeError("redis-server did not come up")
        finally:
            await client.aclose()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()
        self.proc = None


@pytest_asyncio.fixture
async def own_redis() -> AsyncIterator[RedisServer]:
    require_service(
        "redis-server binary",
        shutil.which("redis-server") is not None,
        "apt-get install redis-server",
    )
    server = RedisServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_redis_stopped_mid_test_bypasses_then_recovers(
    cache_gateway: Any, origin: Any, clock: Any, fetch: Any, own_redis: RedisServer
) -> None:
    origin.counting("/r", {"Cache-Control": "max-age=60"}, clock)
    gw = await cache_gateway(redis_cache(own_redis.url, "kairos:", retry_after=0.2))
    assert (await fetch(gw.url + "/r"))[1]["X-Cache"] == "MISS"
    assert (await fetch(gw.url + "/r"))[1]["X-Cache"] == "HIT"
    await own_redis.stop()
    for expected in range(3, 6):
        status, headers, body = await fetch(gw.url + "/r")
        assert (status, headers["X-Cache"], body) == (200, "BYPASS", f"n={expected - 1}")
    await own_redis.start()
    await asyncio.sleep(0.25)  # the store retries Redis once `retry_after` has passed
    assert (await fetch(gw.url + "/r"))[1]["X-Cache"] == "MISS"  # a fresh, empty Redis
    _, headers, body = await fetch(gw.url + "/r")
    assert (headers["X-Cache"], body) == ("HIT", "n=5")
    counts = gw.gateway.metrics.snapshot()["kairos_cache_requests"]["values"]
    assert counts[("main", "bypass")] == 3
    assert counts[("main", "hit")] == 2


async def test_redis_unreachable_from_the_start(
    cache_gateway: Any, origin: Any, fetch: Any
) -> None:
    origin.counting("/r", {"Cache-Control": "max-age=60"})
    gw = await cache_gateway(redis_cache(f"redis://127.0.0.1:{free_port()}/0", "x:"))
    for _ in range(2):
        status, headers, _ = await fetch(gw.url + "/r")
        assert (status, headers["X-Cache"]) == (200, "BYPASS")


async def test_purge_removes_redis_entries(
    cache_gateway: Any,
    origin: Any,
    fetch: Any,
    http: aiohttp.ClientSession,
    redis_url: str,
    namespace: str,
) -> None:
    for path in ("/p/1", "/p/2", "/q/1"):
        origin.counting(path, {"Cache-Control": "max-age=60"})
    gw = await cache_gateway(redis_cache(redis_url, namespace))
    for path in ("/p/1", "/p/2", "/q/1"):
        await fetch(gw.url + path)
    async with http.post(gw.admin_url + "/cache/purge", json={"prefix": "/p/"}) as response:
        assert (response.status, (await response.json())["removed"]) == (200, 2)
    assert (await fetch(gw.url + "/p/1"))[1]["X-Cache"] == "MISS"
    assert (await fetch(gw.url + "/q/1"))[1]["X-Cache"] == "HIT"


async def test_local_tier_skips_redis_for_a_bounded_time(
    kairos_gateway: Any,
    origin: Any,
    clock: Any,
    fetch: Any,
    http: aiohttp.ClientSession,
    redis_url: str,
    namespace: str,
) -> None:
    origin.counting("/t", {"Cache-Control": "max-age=600"}, clock)
    cache = redis_cache(redis_url, namespace, local_ttl=5)
    config = {
        "routes": [
            {
                "name": "main",
                "prefix": "/",
                "upstream": {"backends": [{"url": origin.url}]},
                "plugins": [{"name": "cache", "config": {**cache, "key": {"host": False}}}],
            }
        ]
    }
    first = await kairos_gateway(config, plugins=[CachePlugin(clock=clock)])
    second = await kairos_gateway(config, plugins=[CachePlugin(clock=clock)])
    assert (await fetch(first.url + "/t"))[1]["X-Cache"] == "MISS"
    assert (await fetch(second.url + "/t"))[1]["X-Cache"] == "HIT"  # from Redis, now local too
    async with http.post(first.admin_url + "/cache/purge", json={"all": True}) as response:
        assert (await response.json())["removed"] == 1
    assert (await fetch(first.url + "/t"))[1]["X-Cache"] == "MISS"  # purged here and in Redis
    _, headers, body = await fetch(second.url + "/t")
    assert (headers["X-Cache"], body) == ("HIT", "n=1")  # the other gateway's local copy...
    clock.advance(6)
    _, headers, body = await fetch(second.url + "/t")
    assert (headers["X-Cache"], body) == ("HIT", "n=2")  # ...lasts at most local_ttl


async def test_local_tier_serves_while_redis_is_down(
    cache_gateway: Any, origin: Any, clock: Any, fetch: Any, own_redis: RedisServer
) -> None:
    origin.counting("/hot", {"Cache-Control": "max-age=600"}, clock)
    origin.counting("/cold", {"Cache-Control": "max-age=600"}, clock)
    gw = await cache_gateway(redis_cache(own_redis.url, "k:", local_ttl=30))
    await fetch(gw.url + "/hot")
    await own_redis.stop()
    assert (await fetch(gw.url + "/hot"))[1]["X-Cache"] == "HIT"
    assert (await fetch(gw.url + "/cold"))[1]["X-Cache"] == "BYPASS"


async def test_unreadable_entry_counts_as_a_miss(
    cache_gateway: Any, origin: Any, fetch: Any, redis_url: str, namespace: str
) -> None:
    origin.counting("/c", {"Cache-Control": "max-age=60"})
    gw = await cache_gateway({**redis_cache(redis_url, namespace), "expose_key": True})
    _, headers, _ = await fetch(gw.url + "/c")
    client = aioredis.Redis.from_url(redis_url)
    try:
        await client.set(namespace + headers["X-Cache-Key"], b"garbage", px=60_000)
    finally:
        await client.aclose()
    _, headers, body = await fetch(gw.url + "/c")
    assert (headers["X-Cache"], body) == ("MISS", "n=2")
    assert (await fetch(gw.url + "/c"))[1]["X-Cache"] == "HIT"
