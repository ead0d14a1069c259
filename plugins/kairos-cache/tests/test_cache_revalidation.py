"""Conditional revalidation, clients' own conditionals, stale-while-revalidate and stale-if-error."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web


def etag_origin(origin: Any, clock: Any, path: str, cache_control: str, version: list[int]) -> None:
    """An origin with an ETag per version that answers If-None-Match with 304."""

    @origin.route(path)
    async def handler(request: web.Request) -> web.Response:
        etag = f'"v{version[0]}"'
        headers = {"Cache-Control": cache_control, "ETag": etag, "Date": clock.http_date()}
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={**headers, "X-Refreshed": "yes"})
        return web.Response(text=f"body-v{version[0]}", headers=headers)


async def test_backend_304_refreshes_the_entry(
    cache_gateway: Any, origin: Any, clock: Any, fetch: Any
) -> None:
    version = [1]
    etag_origin(origin, clock, "/doc", "max-age=10", version)
    gw = await cache_gateway()
    assert (await fetch(gw.url + "/doc"))[1]["X-Cache"] == "MISS"
    clock.advance(15)
    status, headers, body = await fetch(gw.url + "/doc")
    assert (status, headers["X-Cache"], body, headers["Age"]) == (200, "HIT", "body-v1", "0")
    assert headers["X-Refreshed"] == "yes"  # headers of the 304 were merged in
    assert origin.requests[-1].headers["If-None-Match"] == '"v1"'
    clock.advance(5)
    assert (await fetch(gw.url + "/doc"))[1]["X-Cache"] == "HIT"  # fresh again after the 304
    assert origin.hits["/doc"] == 2
    version[0] = 2
    clock.advance(10)
    _, headers, body = await fetch(gw.url + "/doc")
    assert (headers["X-Cache"], body) == ("MISS", "body-v2")


async def test_last_modified_revalidation(
    cache_gateway: Any, origin: Any, clock: Any, fetch: Any
) -> None:
    stamp = "Tue, 01 Jul 2025 10:00:00 GMT"

    @origin.route("/lm")
    async def handler(request: web.Request) -> web.Response:
        headers = {"Cache-Control": "no-cache", "Last-Modified": stamp, "Date": clock.http_date()}
        if request.headers.get("If-Modified-Since") == stamp:
            return web.Response(status=304, headers=headers)
        return web.Response(text="lm-body", headers=headers)

    gw = await cache_gateway()
    assert (await fetch(gw.url + "/lm"))[1]["X-Cache"] == "MISS"
    _, headers, body = await fetch(gw.url + "/lm")  # no-cache: every use revalidates
    assert (headers["X-Cache"], body) == ("HIT", "lm-body")
    assert origin.requests[-1].headers["If-Modified-Since"] == stamp
    assert origin.hits["/lm"] == 2


async def test_client_conditionals_get_304_from_the_cache(
    cache_gateway: Any, origin: Any, clock: Any, fetch: Any
) -> None:
    stamp = "Tue, 01 Jul 2025 10:00:00 GMT"

    @origin.route("/c")
    async def handler(request: web.Request) -> web.Response:
        return web.Response(
            text="content",
            headers={"Cache-Control": "max-age=60", "ETag": 'W/"abc"', "Last-Modified": stamp},
        )

    gw = await cache_gateway()
    await fetch(gw.url + "/c")
    status, headers, body = await fetch(gw.url + "/c", headers={"If-None-Match": '"x", "abc"'})
    assert (status, headers["X-Cache"], body, headers["ETag"]) == (304, "HIT", "", 'W/"abc"')
    assert headers["Cache-Control"] == "max-age=60"
    status, _, body = await fetch(gw.url + "/c", headers={"If-None-Match": '"other"'})
    assert (status, body) == (200, "content")
    status, _, _ = await fetch(gw.url + "/c", headers={"If-Modified-Since": stamp})
    assert status == 304
    status, _, _ = await fetch(
        gw.url + "/c", headers={"If-Modified-Since": "Mon, 30 Jun 2025 10:00:00 GMT"}
    )
    assert status == 200
    assert origin.hits["/c"] == 1


async def test_stale_while_revalidate_serves_stale_and_refreshes_in_background(
    cache_gateway: Any, origin: Any, clock: Any, fetch: Any
) -> None:
    gate = asyncio.Event()
    gate.set()

    @origin.route("/swr")
    async def handler(request: web.Request) -> web.Response:
        await gate.wait()
        return web.Response(
            text=f"n={origin.hits['/swr']}",
            headers={
                "Cache-Control": "max-age=10, stale-while-revalidate=30",
                "Date": clock.http_date(),
            },
        )

    gw = await cache_gateway()
    await fetch(gw.url + "/swr")
    clock.advance(15)
    gate.clear()  # the refresh will hang until released: the client must not wait for it
    _, headers, body = await asyncio.wait_for(fetch(gw.url + "/swr"), 5)
    assert (headers["X-Cache"], body, headers["Age"]) == ("STALE", "n=1", "15")
    _, headers, body = await asyncio.wait_for(fetch(gw.url + "/swr"), 5)
    assert (headers["X-Cache"], body) == ("STALE", "n=1")  # one refresh at a time
    gate.set()
    for _ in range(200):
        if origin.hits["/swr"] == 2:
            break
        await asyncio.sleep(0.01)
    for _ in range(200):
        _, headers, body = await fetch(gw.url + "/swr")
        if body == "n=2":
            break
        await asyncio.sleep(0.01)
    assert (headers["X-Cache"], body) == ("HIT", "n=2")
    assert origin.hits["/swr"] == 2
    clock.advance(45)  # past max-age + stale-while-revalidate: fetched while the client waits
    _, headers, body = await fetch(gw.url + "/swr")
    assert (headers["X-Cache"], body) == ("MISS", "n=3")


async def test_background_refresh_failure_does_not_hurt(
    cache_gateway: Any, origin: Any, clock: Any, fetch: Any
) -> None:
    healthy = [True]

    @origin.route("/flaky")
    async def handler(request: web.Request) -> web.Response:
        if not healthy[0]:
            raise ConnectionResetError("dying")
        return web.Response(
            text="ok",
            headers={
                "Cache-Control": "max-age=1, stale-while-revalidate=60",
                "Date": clock.http_date(),
            },
        )

    gw = await cache_gateway()
    await fetch(gw.url + "/flaky")
    clock.advance(5)
    healthy[0] = False
    for _ in range(3):
        status, headers, body = await fetch(gw.url + "/flaky")
        assert (status, headers["X-Cache"], body) == (200, "STALE", "ok")
        await asyncio.sleep(0.05)


async def test_must_revalidate_forbids_stale(
    cache_gateway: Any, origin: Any, clock: Any, fetch: Any
) -> None:
    origin.counting(
        "/mr", {"Cache-Control": "max-age=1, must-revalidate, stale-while-revalidate=60"}, clock
    )
    gw = await cache_gateway()
    await fetch(gw.url + "/mr")
    clock.advance(5)
    _, headers, body = await fetch(gw.url + "/mr")
    assert (headers["X-Cache"], body) == ("MISS", "n=2")


async def test_stale_if_error_on_backend_error(
    cache_gateway: Any, origin: Any, clock: Any, fetch: Any
) -> None:
    failing = [False]

    @origin.route("/sie")
    async def handler(request: web.Request) -> web.Response:
        if failing[0]:
            return web.Response(status=503, text="down")
        return web.Response(
            text="good",
            headers={"Cache-Control": "max-age=10, stale-if-error=60", "Date": clock.http_date()},
        )

    gw = await cache_gateway()
    await fetch(gw.url + "/sie")
    failing[0] = True
    clock.advance(30)
    status, headers, body = await fetch(gw.url + "/sie")
    assert (status, headers["X-Cache"], body) == (200, "STALE", "good")
    clock.advance(60)
    status, headers, _ = await fetch(gw.url + "/sie")
    assert (status, headers["X-Cache"]) == (503, "MISS")


async def test_stale_if_error_when_backend_is_gone(
    cache_gateway: Any, origin: Any, clock: Any, fetch: Any
) -> None:
    origin.counting("/gone", {}, clock)
    gw = await cache_gateway({"default_ttl": 5, "stale_if_error": 100})
    await fetch(gw.url + "/gone")
    await origin.backend.stop()
    clock.advance(20)
    status, headers, body = await fetch(gw.url + "/gone")
    assert (status, headers["X-Cache"], body) == (200, "STALE", "n=1")
