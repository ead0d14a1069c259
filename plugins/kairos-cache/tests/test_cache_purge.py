"""Purging through the admin API, in one process and across the workers of `--workers 2`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from kairos_cache import CachePlugin

from kairos_core.testing import GatewayProcess
from kairos_core.testing.process import free_port


def two_routes(origin_url: str) -> dict[str, Any]:
    cache = {"name": "cache", "config": {"expose_key": True, "key": {"host": False}}}
    return {
        "routes": [
            {
                "name": "docs",
                "prefix": "/docs",
                "upstream": {"backends": [{"url": origin_url}]},
                "plugins": [cache],
            },
            {
                "name": "api",
                "prefix": "/api",
                "upstream": {"backends": [{"url": origin_url}]},
                "plugins": [cache],
            },
        ]
    }


async def purge(http: aiohttp.ClientSession, admin: str, payload: Any) -> tuple[int, Any]:
    async with http.post(admin + "/cache/purge", json=payload) as response:
        return response.status, await response.json()


async def test_purge_by_key_route_prefix_and_all(
    kairos_gateway: Any, origin: Any, clock: Any, fetch: Any, http: aiohttp.ClientSession
) -> None:
    paths = ["/docs/a", "/docs/b", "/docs/guide/1", "/api/x", "/api/y"]
    for path in paths:
        origin.counting(path, {"Cache-Control": "max-age=600"})
    gw = await kairos_gateway(two_routes(origin.url), plugins=[CachePlugin(clock=clock)])
    assert gw.admin_url is not None

    async def states() -> dict[str, str]:
        return {p: (await fetch(gw.url + p))[1]["X-Cache"] for p in paths}

    keys = {p: (await fetch(gw.url + p))[1]["X-Cache-Key"] for p in paths}
    assert set((await states()).values()) == {"HIT"}

    assert await purge(http, gw.admin_url, {"key": keys["/docs/a"]}) == (
        200,
        {"removed": 1, "workers": 1, "errors": []},
    )
    assert await states() == {p: "MISS" if p == "/docs/a" else "HIT" for p in paths}

    status, body = await purge(http, gw.admin_url, {"prefix": "/docs/g"})
    assert (status, body["removed"]) == (200, 1)
    assert (await states())["/docs/guide/1"] == "MISS"

    status, body = await purge(http, gw.admin_url, {"route": "api"})
    assert (status, body["removed"]) == (200, 2)
    assert await states() == {p: "MISS" if p.startswith("/api") else "HIT" for p in paths}

    status, body = await purge(http, gw.admin_url, {"route": "docs", "prefix": "/docs/b"})
    assert (status, body["removed"]) == (200, 1)

    status, body = await purge(http, gw.admin_url, {"all": True})
    assert (status, body["removed"]) == (200, 4)  # /docs/b was purged above
    assert set((await states()).values()) == {"MISS"}


async def test_purge_rejects_bad_requests(
    kairos_gateway: Any, origin: Any, clock: Any, http: aiohttp.ClientSession
) -> None:
    gw = await kairos_gateway(two_routes(origin.url), plugins=[CachePlugin(clock=clock)])
    url = gw.admin_url + "/cache/purge"
    async with http.post(url, data=b"{not json") as response:
        assert response.status == 400
        assert (await response.json())["type"] == "invalid_json"
    for payload, fragment in [
        ({}, "give `key`"),
        ({"prefix": "docs"}, "must start with '/'"),
        ({"all": True, "route": "api"}, "cannot be combined"),
        ({"key": "k", "route": "api"}, "do not combine"),
        ({"rout": "api"}, "rout"),
        ([1, 2], "JSON object"),
    ]:
        status, body = await purge(http, gw.admin_url, payload)
        assert status == 400, payload
        assert fragment in body["message"], (payload, body)


async def test_purge_without_any_cache_configured(
    kairos_gateway: Any, origin: Any, http: aiohttp.ClientSession
) -> None:
    config = {"routes": [{"prefix": "/", "upstream": {"backends": [{"url": origin.url}]}}]}
    gw = await kairos_gateway(config, plugins=[CachePlugin()])
    status, body = await purge(http, gw.admin_url, {"all": True})
    assert (status, body["type"]) == (404, "no_cache")


async def test_purge_reaches_every_worker(origin: Any, tmp_path: Path) -> None:
    origin.counting("/w", {"Cache-Control": "max-age=600"})
    admin_port = free_port()
    config = {
        "listeners": [{"host": "127.0.0.1", "port": 0}],
        "admin": {"host": "127.0.0.1", "port": admin_port},
        "routes": [
            {
                "prefix": "/",
                "upstream": {"backends": [{"url": origin.url}]},
                "plugins": [{"name": "cache"}],
            }
        ],
    }
    path = tmp_path / "workers.yaml"
    path.write_text(yaml.safe_dump(config))
    gateway = GatewayProcess(["--config", str(path), "--workers", "2"])
    connector = aiohttp.TCPConnector(force_close=True)  # new connections spread over workers
    try:
        await gateway.start()
        async with aiohttp.ClientSession(connector=connector) as client:

            async def get() -> str:
                async with client.get(gateway.url + "/w") as response:
                    await response.read()
                    return response.headers["X-Cache"]

            await asyncio.gather(*(get() for _ in range(20)))
            assert 1 <= origin.hits["/w"] <= 2  # at most one miss per worker
            status, body = await purge(client, f"http://127.0.0.1:{admin_port}", {"all": True})
            assert (status, body["workers"]) == (200, 2)
            assert body["removed"] >= 1
            assert await get() == "MISS"  # whichever worker answers, its copy is gone
    finally:
        await gateway.stop()
