"""Concurrent misses for one key make one backend request."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web


async def wait_for(condition: Any, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_fifty_concurrent_misses_make_one_backend_request(
    cache_gateway: Any, origin: Any, fetch: Any
) -> None:
    release = asyncio.Event()

    @origin.route("/hot")
    async def hot(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(
            text=f"n={origin.hits['/hot']}", headers={"Cache-Control": "max-age=60"}
        )

    gw = await cache_gateway()
    clients = [asyncio.create_task(fetch(gw.url + "/hot")) for _ in range(50)]
    await wait_for(lambda: origin.hits["/hot"] == 1)
    await asyncio.sleep(0.2)  # let the other 49 reach the gateway and queue behind the first
    release.set()
    results = await asyncio.gather(*clients)
    assert origin.hits["/hot"] == 1
    assert {(status, body) for status, _, body in results} == {(200, "n=1")}
    states = sorted(headers["X-Cache"] for _, headers, _ in results)
    assert states.count("MISS") == 1
    assert states.count("HIT") == 49


async def test_uncacheable_answer_releases_the_waiters(
    cache_gateway: Any, origin: Any, fetch: Any
) -> None:
    release = asyncio.Event()

    @origin.route("/private")
    async def private(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="mine", headers={"Cache-Control": "private"})

    gw = await cache_gateway()
    clients = [asyncio.create_task(fetch(gw.url + "/private")) for _ in range(5)]
    await wait_for(lambda: origin.hits["/private"] == 1)
    await asyncio.sleep(0.1)
    release.set()
    results = await asyncio.gather(*clients)
    assert [(s, b) for s, _, b in results] == [(200, "mine")] * 5
    assert origin.hits["/private"] == 5


async def test_coalescing_can_be_turned_off(cache_gateway: Any, origin: Any, fetch: Any) -> None:
    release = asyncio.Event()

    @origin.route("/hot")
    async def hot(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="x", headers={"Cache-Control": "max-age=60"})

    gw = await cache_gateway({"coalesce": False})
    clients = [asyncio.create_task(fetch(gw.url + "/hot")) for _ in range(5)]
    await wait_for(lambda: origin.hits["/hot"] == 5)
    release.set()
    await asyncio.gather(*clients)


async def test_leader_client_leaving_does_not_strand_waiters(
    cache_gateway: Any, origin: Any, http: Any, fetch: Any
) -> None:
    release = asyncio.Event()

    @origin.route("/s")
    async def slow(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Cache-Control": "max-age=60"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        if origin.hits["/s"] == 1:
            await response.write(b"a")
            await release.wait()
        await response.write(b"b")
        await response.write_eof()
        return response

    gw = await cache_gateway()
    leader = await http.get(gw.url + "/s")
    await leader.content.readexactly(1)
    follower = asyncio.create_task(fetch(gw.url + "/s"))
    await asyncio.sleep(0.1)
    leader.close()  # the leader's client hangs up mid-body
    release.set()
    status, _, body = await asyncio.wait_for(follower, 5)
    assert (status, body) in {(200, "ab"), (200, "b")}
