"""Key composition (query, headers, host, consumer) and requests that carry credentials."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from kairos_cache import CachePlugin

from kairos_core import (
    AuthFailure,
    AuthPlugin,
    BuildContext,
    Consumer,
    NoConfig,
    RequestContext,
    hookimpl,
)


class KeyAuthenticator:
    """`Authorization: Key <consumer>` for configured consumers (a real, if simple, auth method)."""

    challenge = "Key"

    def __init__(self, consumers: Any) -> None:
        self.consumers = consumers

    async def authenticate(self, ctx: RequestContext) -> Consumer | None:
        value = ctx.headers.get("Authorization", "")
        if not value.startswith("Key "):
            return None
        consumer = self.consumers.get(value[4:])
        if consumer is None:
            raise AuthFailure("unknown key")
        return consumer  # type: ignore[no-any-return]


class KeyAuth:
    @hookimpl
    def register_authenticators(self, register: Callable[[AuthPlugin[Any]], None]) -> None:
        def build(config: NoConfig, context: BuildContext) -> KeyAuthenticator:
            return KeyAuthenticator(context.services.consumers)

        register(AuthPlugin(name="test-key", build=build))


def whoami(origin: Any) -> None:
    @origin.route("/me")
    async def me(request: web.Request) -> web.Response:
        who = request.headers.get("X-Consumer", "anonymous")
        return web.Response(
            text=f"{who}:{origin.hits['/me']}", headers={"Cache-Control": "max-age=60"}
        )


async def test_credentials_bypass_by_default(cache_gateway: Any, origin: Any, fetch: Any) -> None:
    whoami(origin)
    gw = await cache_gateway()
    for headers in ({"Authorization": "Bearer x"}, {"Cookie": "session=1"}):
        await fetch(gw.url + "/me", headers=headers)
        _, got, _ = await fetch(gw.url + "/me", headers=headers)
        assert got["X-Cache"] == "BYPASS"
    assert origin.hits["/me"] == 4
    _, got, _ = await fetch(gw.url + "/me")
    assert got["X-Cache"] == "MISS"


async def test_allowed_credentials_are_keyed_by_consumer(
    kairos_gateway: Any, origin: Any, clock: Any, fetch: Any
) -> None:
    whoami(origin)
    config = {
        "consumers": [{"name": "alice"}, {"name": "bob"}],
        "routes": [
            {
                "prefix": "/",
                "upstream": {"backends": [{"url": origin.url}]},
                "plugins": [
                    {"name": "test-key"},
                    {"name": "cache", "config": {"allow_credentials": True}},
                ],
            }
        ],
    }
    gw = await kairos_gateway(config, plugins=[KeyAuth(), CachePlugin(clock=clock)])
    alice = {"Authorization": "Key alice"}
    bob = {"Authorization": "Key bob"}
    assert (await fetch(gw.url + "/me", headers=alice))[2] == "alice:1"
    assert (await fetch(gw.url + "/me", headers=bob))[2] == "bob:2"
    _, headers, body = await fetch(gw.url + "/me", headers=alice)
    assert (headers["X-Cache"], body) == ("HIT", "alice:1")
    _, headers, body = await fetch(gw.url + "/me", headers=bob)
    assert (headers["X-Cache"], body) == ("HIT", "bob:2")


async def test_allowed_credentials_without_a_consumer_bypass(
    cache_gateway: Any, origin: Any, fetch: Any
) -> None:
    whoami(origin)
    gw = await cache_gateway({"allow_credentials": True})
    _, headers, _ = await fetch(gw.url + "/me", headers={"Cookie": "a=1"})
    assert headers["X-Cache"] == "BYPASS"


async def test_key_query_all_none_and_selected(
    cache_gateway: Any, origin: Any, clock: Any, fetch: Any
) -> None:
    origin.counting("/q", {"Cache-Control": "max-age=60"}, clock)
    gw = await cache_gateway({"key": {"query": ["page", "size"]}})
    await fetch(gw.url + "/q?page=1&size=2&utm=a")
    _, headers, body = await fetch(gw.url + "/q?utm=b&size=2&page=1")
    assert (headers["X-Cache"], body) == ("HIT", "n=1")
    _, headers, _ = await fetch(gw.url + "/q?page=2&size=2")
    assert headers["X-Cache"] == "MISS"


async def test_key_query_none(cache_gateway: Any, origin: Any, clock: Any, fetch: Any) -> None:
    origin.counting("/q", {"Cache-Control": "max-age=60"}, clock)
    gw = await cache_gateway({"key": {"query": "none"}})
    await fetch(gw.url + "/q?a=1")
    assert (await fetch(gw.url + "/q?a=2"))[1]["X-Cache"] == "HIT"


async def test_key_query_all_by_default(
    cache_gateway: Any, origin: Any, clock: Any, fetch: Any
) -> None:
    origin.counting("/q", {"Cache-Control": "max-age=60"}, clock)
    gw = await cache_gateway()
    await fetch(gw.url + "/q?a=1")
    assert (await fetch(gw.url + "/q?a=2"))[1]["X-Cache"] == "MISS"
    assert (await fetch(gw.url + "/q?a=1"))[1]["X-Cache"] == "HIT"


async def test_key_headers_and_host(
    cache_gateway: Any, origin: Any, clock: Any, fetch: Any
) -> None:
    origin.counting("/k", {"Cache-Control": "max-age=60"}, clock)
    gw = await cache_gateway({"key": {"headers": ["X-Tenant"], "host": False}, "expose_key": True})
    _, headers, _ = await fetch(gw.url + "/k", headers={"X-Tenant": "a"})
    assert headers["X-Cache-Key"] == "main|/k||a|"
    assert (await fetch(gw.url + "/k", headers={"X-Tenant": "b"}))[1]["X-Cache"] == "MISS"
    _, headers, _ = await fetch(gw.url + "/k", headers={"X-Tenant": "a", "Host": "other.example"})
    assert headers["X-Cache"] == "HIT"


async def test_host_is_part_of_the_key_by_default(
    cache_gateway: Any, origin: Any, clock: Any, fetch: Any
) -> None:
    origin.counting("/k", {"Cache-Control": "max-age=60"}, clock)
    gw = await cache_gateway()
    await fetch(gw.url + "/k", headers={"Host": "a.example"})
    assert (await fetch(gw.url + "/k", headers={"Host": "b.example"}))[1]["X-Cache"] == "MISS"
    assert (await fetch(gw.url + "/k", headers={"Host": "A.example"}))[1]["X-Cache"] == "HIT"
