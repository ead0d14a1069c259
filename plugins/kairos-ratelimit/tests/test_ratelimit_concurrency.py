"""The concurrency limit frees its slots however a request ends: success, error, timeout, disconnect."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import kairos_ratelimit
from aiohttp import web


class SlowBackend:
    """Answers after `release` is set (or never); counts requests that reached it."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.arrived = 0
        self.entered = asyncio.Event()

    def app(self) -> web.Application:
        async def handle(request: web.Request) -> web.StreamResponse:
            self.arrived += 1
            self.entered.set()
            if request.path == "/fail":
                raise web.HTTPInternalServerError()
            if request.path.startswith("/slow"):
                await self.release.wait()
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        return app


def config(url: str, **route: Any) -> dict[str, Any]:
    limit = {"limits": [{"algorithm": "concurrency", "limit": 1}], "key": []}
    return {
        "routes": [
            {
                "prefix": "/",
                "upstream": {"backends": [{"url": url}]},
                "plugins": [{"name": "rate-limit", "config": limit}],
                **route,
            }
        ]
    }


async def get_status(http: aiohttp.ClientSession, url: str) -> int:
    async with http.get(url) as response:
        await response.read()
        return response.status


async def test_second_request_waits_for_the_first(backend_factory, kairos_gateway, http) -> None:
    slow = SlowBackend()
    backend = await backend_factory(slow.app())
    gw = await kairos_gateway(config(backend.url), plugins=[kairos_ratelimit])
    first = asyncio.create_task(get_status(http, gw.url + "/slow"))
    await slow.entered.wait()
    async with http.get(gw.url + "/other") as response:
        assert response.status == 429
        assert response.headers["RateLimit"] == '"1-in-flight";r=0;t=0'
    slow.release.set()
    assert await first == 200
    assert await get_status(http, gw.url + "/other") == 200


async def test_slot_freed_after_upstream_error(backend_factory, kairos_gateway, http) -> None:
    backend = await backend_factory(SlowBackend().app())
    gw = await kairos_gateway(config(backend.url), plugins=[kairos_ratelimit])
    assert await get_status(http, gw.url + "/fail") == 500
    assert await get_status(http, gw.url + "/fine") == 200


async def test_slot_freed_when_upstream_is_down(kairos_gateway, http) -> None:
    from kairos_core.testing.process import free_port

    gw = await kairos_gateway(config(f"http://127.0.0.1:{free_port()}"), plugins=[kairos_ratelimit])
    assert await get_status(http, gw.url + "/") == 502
    assert await get_status(http, gw.url + "/") == 502  # not 429: the slot came back


async def test_slot_freed_after_upstream_timeout(backend_factory, kairos_gateway, http) -> None:
    slow = SlowBackend()
    backend = await backend_factory(slow.app())
    gw = await kairos_gateway(
        config(backend.url, timeouts={"read": 0.2}), plugins=[kairos_ratelimit]
    )
    assert await get_status(http, gw.url + "/slow") == 504
    slow.release.set()
    assert await get_status(http, gw.url + "/fine") == 200


async def test_slot_freed_when_the_client_disconnects(
    backend_factory, kairos_gateway, http
) -> None:
    slow = SlowBackend()
    backend = await backend_factory(slow.app())
    gw = await kairos_gateway(config(backend.url), plugins=[kairos_ratelimit])
    async with aiohttp.ClientSession() as impatient:
        task = asyncio.create_task(get_status(impatient, gw.url + "/slow"))
        await slow.entered.wait()
        task.cancel()  # closes the client's connection mid-request
    for _ in range(50):
        if await get_status(http, gw.url + "/fine") == 200:
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the disconnected request kept its concurrency slot")
    slow.release.set()
