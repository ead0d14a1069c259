"""RFC 9111 behaviour through a real gateway and a real origin emitting each caching header."""

from __future__ import annotations

from typing import Any

from aiohttp import web


async def test_max_age_hit_then_expiry(
    cache_gateway: Any, origin: Any, clock: Any, fetch: Any
) -> None:
    origin.counting("/a", {"Cache-Control": "max-age=60"}, clock)
    gw = await cache_gateway()
    status, headers, body = await fetch(gw.url + "/a")
    assert (status, headers["X-Cache"], body) == (200, "MISS", "n=1")
    clock.advance(30)
    status, headers, body = await fetch(gw.url + "/a")
    assert (headers["X-Cache"], body, headers["Age"]) == ("HIT", "n=1", "30")
    clock.advance(31)
    status, headers, body = await fetch(gw.url + "/a")
    assert (headers["X-Cache"], body) == ("MISS", "n=2")
    assert origin.hits["/a"] == 2


async def test_s_maxage_wins_over_max_age(
    cache_gateway: Any, origin: Any, clock: Any, fetch: Any
) -> None:
    origin.counting("/s", {"Cache-Control": "max-age=5, s-maxage=100"}, clock)
    gw = await cache_gateway()
    await fetch(gw.url + "/s")
    clock.advance(50)
    _, headers, body = await fetch(gw.url + "/s")
    assert (headers["X-Cache"], body) == ("HIT", "n=1")


async def test_expires_gives_freshness_relative_to_date(
    cache_gateway: Any, origin: Any, clock: Any, fetch: Any
) -> None:
    import email.utils

    @origin.route("/e")
    async def expires(request: web.Request) -> web.Response:
        return web.Response(
            text=f"n={origin.hits['/e']}",
            headers={
                "Date": clock.http_date(),
                "Expires": email.utils.formatdate(clock.now + 20, usegmt=True),
            },
        )

    gw = await cache_gateway()
    await fetch(gw.url + "/e")
    clock.advance(19)
    assert (await fetch(gw.url + "/e"))[1]["X-Cache"] == "HIT"
    clock.advance(2)
    _, headers, body = await fetch(gw.url + "/e")
    assert (headers["X-Cache"], body) == ("MISS", "n=2")


async def test_invalid_expires_means_already_expired(
    cache_gateway: Any, origin: Any, clock: Any, fetch: Any
) -> None:
    origin.counting("/bad", {"Expires": "0"}, clock)
    gw = await cache_gateway({"default_ttl": 60})
    await fetch(gw.url + "/bad")
    assert (await fetch(gw.url + "/bad"))[1]["X-Cache"] == "MISS"
    assert origin.hits["/bad"] == 2


async def test_age_from_upstream_counts(
    cache_gateway: Any, origin: Any, clock: Any, fetch: Any
) -> None:
    origin.counting("/aged", {"Cache-Control": "max-age=60", "Age": "50"}, clock)
    gw = await cache_gateway()
    await fetch(gw.url + "/aged")
    clock.advance(5)
    _, headers, _ = await fetch(gw.url + "/aged")
    assert (headers["X-Cache"], headers["Age"]) == ("HIT", "55")
    clock.advance(6)
    assert (await fetch(gw.url + "/aged"))[1]["X-Cache"] == "MISS"


async def test_never_stored(cache_gateway: Any, origin: Any, clock: Any, fetch: Any) -> None:
    origin.counting("/no-store", {"Cache-Control": "no-store, max-age=60"}, clock)
    origin.counting("/private", {"Cache-Control": "private, max-age=60"}, clock)
    origin.counting("/cookie", {"Cache-Control": "max-age=60", "Set-Cookie": "a=b"}, clock)
    origin.counting("/vary-star", {"Cache-Control": "max-age=60", "Vary": "*"}, clock)
    origin.counting("/silent", {}, clock)

    @origin.route("/error")
    async def error(request: web.Request) -> web.Response:
        return web.Response(status=500, text="x", headers={"Cache-Control": "max-age=60"})

    gw = await cache_gateway()
    for path in ("/no-store", "/private", "/cookie", "/vary-star", "/silent", "/error"):
        await fetch(gw.url + path)
        _, headers, _ = await fetch(gw.url + path)
        assert headers["X-Cache"] == "MISS", path
        assert origin.hits[path] == 2, path


async def test_cacheable_error_status(
    cache_gateway: Any, origin: Any, clock: Any, fetch: Any
) -> None:
    @origin.route("/gone")
    async def gone(request: web.Request) -> web.Response:
        return web.Response(status=404, text="gone", headers={"Cache-Control": "max-age=60"})

    gw = await cache_gateway()
    await fetch(gw.url + "/gone")
    status, headers, _ = await fetch(gw.url + "/gone")
    assert (status, headers["X-Cache"]) == (404, "HIT")


async def test_default_ttl_only_when_backend_is_silent(
    cache_gateway: Any, origin: Any, clock: Any, fetch: Any
) -> None:
    origin.counting("/silent", {}, clock)
    origin.counting("/short", {"Cache-Control": "max-age=1"}, clock)
    gw = await cache_gateway({"default_ttl": 30})
    for path in ("/silent", "/short"):
        await fetch(gw.url + path)
    clock.advance(10)
    assert (await fetch(gw.url + "/silent"))[1]["X-Cache"] == "HIT"
    assert (await fetch(gw.url + "/short"))[1]["X-Cache"] == "MISS"


async def test_force_ttl_overrides_backend(
    cache_gateway: Any, origin: Any, clock: Any, fetch: Any
) -> None:
    origin.counting("/nc", {"Cache-Control": "no-cache"}, clock)
    origin.counting("/ns", {"Cache-Control": "no-store"}, clock)
    gw = await cache_gateway({"force_ttl": 100})
    await fetch(gw.url + "/nc")
    await fetch(gw.url + "/ns")
    clock.advance(99)
    assert (await fetch(gw.url + "/nc"))[1]["X-Cache"] == "HIT"
    assert (await fetch(gw.url + "/ns"))[1]["X-Cache"] == "MISS"  # no-store still wins


async def test_vary_keeps_one_entry_per_header_value(
    cache_gateway: Any, origin: Any, clock: Any, fetch: Any
) -> None:
    @origin.route("/lang")
    async def lang(request: web.Request) -> web.Response:
        language = request.headers.get("Accept-Language", "none")
        return web.Response(
            text=f"{language}:{origin.hits['/lang']}",
            headers={"Cache-Control": "max-age=60", "Vary": "Accept-Language"},
        )

    gw = await cache_gateway()
    en = {"Accept-Language": "en"}
    fr = {"Accept-Language": "fr"}
    assert (await fetch(gw.url + "/lang", headers=en))[1]["X-Cache"] == "MISS"
    _, headers, body = await fetch(gw.url + "/lang", headers=fr)
    assert (headers["X-Cache"], body) == ("MISS", "fr:2")
    _, headers, body = await fetch(gw.url + "/lang", headers=en)
    assert (headers["X-Cache"], body) == ("HIT", "en:1")
    _, headers, body = await fetch(gw.url + "/lang", headers=fr)
    assert (headers["X-Cache"], body) == ("HIT", "fr:2")
    _, headers, body = await fetch(gw.url + "/lang")
    assert (headers["X-Cache"], body) == ("MISS", "none:3")
    assert origin.hits["/lang"] == 3


async def test_head_is_answered_from_a_stored_get(
    cache_gateway: Any, origin: Any, clock: Any, fetch: Any
) -> None:
    origin.counting("/h", {"Cache-Control": "max-age=60"}, clock)
    gw = await cache_gateway()
    status, headers, _ = await fetch(gw.url + "/h", method="HEAD")
    assert (status, headers["X-Cache"]) == (200, "MISS")
    await fetch(gw.url + "/h")
    status, headers, body = await fetch(gw.url + "/h", method="HEAD")
    assert (status, headers["X-Cache"], headers["Content-Length"], body) == (200, "HIT", "3", "")
    assert origin.hits["/h"] == 2


async def test_unsafe_request_invalidates(
    cache_gateway: Any, origin: Any, clock: Any, fetch: Any
) -> None:
    origin.counting("/item", {"Cache-Control": "max-age=60"}, clock)
    gw = await cache_gateway()
    await fetch(gw.url + "/item")
    assert (await fetch(gw.url + "/item"))[1]["X-Cache"] == "HIT"
    status, headers, _ = await fetch(gw.url + "/item", method="POST", data=b"x")
    assert status == 200
    assert "X-Cache" not in headers
    _, headers, body = await fetch(gw.url + "/item")
    assert (headers["X-Cache"], body) == ("MISS", "n=3")


async def test_client_request_directives(
    cache_gateway: Any, origin: Any, clock: Any, fetch: Any
) -> None:
    origin.counting("/c", {"Cache-Control": "max-age=60"}, clock)
    gw = await cache_gateway()
    status, _, _ = await fetch(gw.url + "/c", headers={"Cache-Control": "only-if-cached"})
    assert status == 504
    _, headers, _ = await fetch(gw.url + "/c", headers={"Cache-Control": "no-store"})
    assert headers["X-Cache"] == "MISS"
    assert (await fetch(gw.url + "/c"))[1]["X-Cache"] == "MISS"  # the no-store answer was not kept
    clock.advance(10)
    assert (await fetch(gw.url + "/c", headers={"Cache-Control": "max-age=20"}))[1][
        "X-Cache"
    ] == "HIT"
    _, headers, body = await fetch(gw.url + "/c", headers={"Cache-Control": "max-age=5"})
    assert (headers["X-Cache"], body) == ("MISS", "n=3")
    _, headers, body = await fetch(gw.url + "/c", headers={"Cache-Control": "no-cache"})
    assert (headers["X-Cache"], body) == ("MISS", "n=4")
    status, headers, body = await fetch(gw.url + "/c", headers={"Cache-Control": "only-if-cached"})
    assert (status, headers["X-Cache"], body) == (200, "HIT", "n=4")


async def test_client_directives_can_be_ignored(
    cache_gateway: Any, origin: Any, clock: Any, fetch: Any
) -> None:
    origin.counting("/c", {"Cache-Control": "max-age=60"}, clock)
    gw = await cache_gateway({"request_directives": False})
    await fetch(gw.url + "/c")
    _, headers, _ = await fetch(gw.url + "/c", headers={"Cache-Control": "no-cache"})
    assert headers["X-Cache"] == "HIT"


async def test_range_requests_bypass(
    cache_gateway: Any, origin: Any, clock: Any, fetch: Any
) -> None:
    origin.counting("/r", {"Cache-Control": "max-age=60"}, clock)
    gw = await cache_gateway()
    await fetch(gw.url + "/r")
    _, headers, _ = await fetch(gw.url + "/r", headers={"Range": "bytes=0-1"})
    assert headers["X-Cache"] == "BYPASS"


async def test_metrics_count_each_outcome(
    cache_gateway: Any, origin: Any, clock: Any, fetch: Any
) -> None:
    origin.counting("/m", {"Cache-Control": "max-age=10, stale-while-revalidate=100"}, clock)
    gw = await cache_gateway()
    await fetch(gw.url + "/m")  # miss
    await fetch(gw.url + "/m")  # hit
    await fetch(gw.url + "/m", headers={"Cookie": "a=1"})  # bypass
    clock.advance(20)
    await fetch(gw.url + "/m")  # stale
    snapshot = gw.gateway.metrics.snapshot()
    requests = snapshot["kairos_cache_requests"]["values"]
    assert {
        result: requests[("main", result)] for result in ("hit", "miss", "stale", "bypass")
    } == {
        "hit": 1,
        "miss": 1,
        "stale": 1,
        "bypass": 1,
    }
    assert snapshot["kairos_cache_stored_bytes"]["values"][("main",)] > 0
