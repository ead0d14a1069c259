"""Bodies stream through the cache: large ones are never buffered nor kept, broken ones never kept."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp
from aiohttp import web

CHUNK = b"x" * 65536


def memory_bytes(gw: Any) -> float:
    values = gw.gateway.metrics.snapshot()["kairos_cache_memory_bytes"]["values"]
    return float(sum(values.values()))


async def test_large_streamed_body_passes_unbuffered_and_uncached(
    cache_gateway: Any, origin: Any, http: aiohttp.ClientSession
) -> None:
    total = 4 * 1024 * 1024
    release = asyncio.Event()

    @origin.route("/big")
    async def big(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Cache-Control": "max-age=60"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(CHUNK)
        await release.wait()  # the rest only once the client has seen the first bytes
        for _ in range(total // len(CHUNK) - 1):
            await response.write(CHUNK)
        await response.write_eof()
        return response

    gw = await cache_gateway({"max_object_size": 1024 * 1024})
    for attempt in range(2):
        release.clear()
        async with http.get(gw.url + "/big") as response:
            assert response.headers["X-Cache"] == "MISS"
            first = await asyncio.wait_for(response.content.readexactly(len(CHUNK)), 5)
            release.set()
            rest = await response.read()
        assert len(first) + len(rest) == total, attempt
        assert memory_bytes(gw) == 0
    assert origin.hits["/big"] == 2


async def test_known_large_length_is_not_teed(cache_gateway: Any, origin: Any, fetch: Any) -> None:
    @origin.route("/sized")
    async def sized(request: web.Request) -> web.Response:
        return web.Response(body=b"y" * 300_000, headers={"Cache-Control": "max-age=60"})

    gw = await cache_gateway({"max_object_size": 100_000})
    for _ in range(2):
        status, headers, body = await fetch(gw.url + "/sized")
        assert (status, headers["X-Cache"], len(body)) == (200, "MISS", 300_000)
    assert memory_bytes(gw) == 0


async def test_chunked_body_within_limit_is_kept(
    cache_gateway: Any, origin: Any, fetch: Any
) -> None:
    @origin.route("/chunks")
    async def chunks(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Cache-Control": "max-age=60"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for index in range(5):
            await response.write(f"part{index};".encode())
            await asyncio.sleep(0)
        await response.write_eof()
        return response

    gw = await cache_gateway()
    await fetch(gw.url + "/chunks")
    _, headers, body = await fetch(gw.url + "/chunks")
    assert (headers["X-Cache"], body) == ("HIT", "part0;part1;part2;part3;part4;")
    assert memory_bytes(gw) > 0


async def test_truncated_body_is_not_kept(
    cache_gateway: Any, origin: Any, http: aiohttp.ClientSession
) -> None:
    @origin.route("/cut")
    async def cut(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Cache-Control": "max-age=60", "Content-Length": "1000"}
        )
        await response.prepare(request)
        await response.write(b"z" * 100)
        assert request.transport is not None
        request.transport.close()  # the backend dies mid-body
        return response

    gw = await cache_gateway()
    for _ in range(2):
        async with http.get(gw.url + "/cut") as response:
            assert response.headers["X-Cache"] == "MISS"
            with contextlib.suppress(aiohttp.ClientPayloadError):
                await response.read()
    assert origin.hits["/cut"] == 2
    assert memory_bytes(gw) == 0


async def test_client_leaving_early_keeps_nothing(
    cache_gateway: Any, origin: Any, http: aiohttp.ClientSession, fetch: Any
) -> None:
    release = asyncio.Event()

    @origin.route("/slow")
    async def slow(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Cache-Control": "max-age=60"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b"start;")
        await release.wait()
        await response.write(b"end")
        await response.write_eof()
        return response

    gw = await cache_gateway()
    async with http.get(gw.url + "/slow") as response:
        await response.content.readexactly(6)
        response.close()  # hang up mid-body
    release.set()
    await asyncio.sleep(0.05)
    assert memory_bytes(gw) == 0
    _, headers, body = await fetch(gw.url + "/slow")
    assert (headers["X-Cache"], body) == ("MISS", "start;end")
