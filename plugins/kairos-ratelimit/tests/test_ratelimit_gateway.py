"""The `rate-limit` components end to end in a real gateway (memory backend, one process)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import kairos_ratelimit
import pytest

from kairos_core import AuthPlugin, BuildContext, Consumer, RequestContext, hookimpl
from kairos_core.config.errors import ConfigError
from kairos_core.testing import Backend


class HeaderAuth:
    """A test authenticator: `X-User` names the consumer, `X-Org` becomes the `org` claim."""

    challenge = "Test"

    async def authenticate(self, ctx: RequestContext) -> Consumer | None:
        user = ctx.request.headers.get("X-User")
        if user is None:
            return None
        org = ctx.request.headers.get("X-Org")
        ctx.claims = {"org": {"id": org}} if org else {}
        return Consumer(user, configured=False)


class HeaderAuthPlugin:
    @hookimpl
    def register_authenticators(self, register: Callable[[AuthPlugin[Any]], None]) -> None:
        def build(config: Any, context: BuildContext) -> HeaderAuth:
            return HeaderAuth()

        register(AuthPlugin(name="header-auth", build=build))


PLUGINS = [kairos_ratelimit, HeaderAuthPlugin()]


def route(backend: Backend, plugins: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "prefix": "/",
        "upstream": {"backends": [{"url": backend.url}]},
        "plugins": plugins,
        **extra,
    }


def limiter(config: dict[str, Any], name: str = "rate-limit") -> dict[str, Any]:
    return {"name": name, "config": config}


async def statuses(http: aiohttp.ClientSession, url: str, count: int, **kwargs: Any) -> list[int]:
    out = []
    for _ in range(count):
        async with http.get(url, **kwargs) as response:
            await response.read()
            out.append(response.status)
    return out


async def test_refuses_with_429_json_and_headers(kairos_gateway, echo_backend, http) -> None:
    # a day-long fixed window: the test cannot straddle a window edge (except at midnight UTC)
    config = {"limits": [{"rate": "2/d", "algorithm": "fixed_window"}, {"rate": "100/h"}]}
    gw = await kairos_gateway(
        {"routes": [route(echo_backend, [limiter(config)], name="api")]}, plugins=PLUGINS
    )
    async with http.get(gw.url + "/a") as response:
        assert response.status == 200
        assert response.headers["RateLimit-Policy"] == (
            '"2-per-1d";q=2;w=86400, "100-per-1h";q=100;w=3600'
        )
        assert response.headers["RateLimit"].startswith('"2-per-1d";r=1;t=')
        assert response.headers["X-RateLimit-Limit"] == "2"
        assert response.headers["X-RateLimit-Remaining"] == "1"
        assert 0 < int(response.headers["X-RateLimit-Reset"]) <= 86400
    assert await statuses(http, gw.url + "/a", 1) == [200]
    async with http.get(gw.url + "/a") as response:
        assert response.status == 429
        body = await response.json()
        assert body["type"] == "rate_limited"
        assert body["status"] == 429
        assert body["request_id"] == response.headers["X-Request-ID"]
        assert 1 <= int(response.headers["Retry-After"]) <= 86400
        assert response.headers["X-RateLimit-Remaining"] == "0"
    assert len(echo_backend.records) == 2


async def test_every_limit_must_pass_and_a_refusal_uses_no_budget(
    kairos_gateway, echo_backend, http
) -> None:
    config = {
        "limits": [
            {"rate": "3/h", "algorithm": "sliding_window_log", "name": "hourly"},
            {"rate": "2/d", "algorithm": "fixed_window", "name": "burst"},
        ],
        "headers": {"style": "ietf"},
    }
    gw = await kairos_gateway({"routes": [route(echo_backend, [limiter(config)])]}, plugins=PLUGINS)
    assert await statuses(http, gw.url + "/", 2) == [200, 200]
    for _ in range(3):
        async with http.get(gw.url + "/") as response:
            assert response.status == 429
            # refused by `burst`, so the hourly budget is untouched: 3 - 2 = 1 left
            assert (
                response.headers["RateLimit"]
                == '"hourly";r=1;t=3600, "burst";r=0;t='
                + (response.headers["RateLimit"].rsplit("t=", 1)[1])
            )
            assert "X-RateLimit-Limit" not in response.headers


async def test_keys_by_ip_header_and_combinations(kairos_gateway, echo_backend, http) -> None:
    config = {"limits": [{"rate": "1/m", "key": ["header:X-Api-Key", "route"]}]}
    gw = await kairos_gateway(
        {"routes": [route(echo_backend, [limiter(config)], name="r")]}, plugins=PLUGINS
    )
    one, two = {"X-Api-Key": "one"}, {"X-Api-Key": "two"}
    assert await statuses(http, gw.url + "/", 2, headers=one) == [200, 429]
    assert await statuses(http, gw.url + "/", 1, headers=two) == [200]
    async with http.get(gw.url + "/") as response:
        assert response.status == 400
        body = await response.json()
        assert body["type"] == "rate_limit_key_missing"
        assert "header:X-Api-Key" in body["message"]


async def test_missing_key_can_skip_that_limit(kairos_gateway, echo_backend, http) -> None:
    config = {
        "limits": [{"rate": "1/m", "key": ["header:X-Api-Key"]}, {"rate": "3/m", "name": "ip"}],
        "on_missing_key": "skip",
    }
    gw = await kairos_gateway({"routes": [route(echo_backend, [limiter(config)])]}, plugins=PLUGINS)
    # without the header only the per-IP limit applies (skipped, never silently unlimited)
    assert await statuses(http, gw.url + "/", 4) == [200, 200, 200, 429]


async def test_one_limit_skipped_passes_without_headers(kairos_gateway, echo_backend, http) -> None:
    config = {"limits": [{"rate": "1/m", "key": ["header:X-Api-Key"]}], "on_missing_key": "skip"}
    gw = await kairos_gateway(
        {"routes": [route(echo_backend, [limiter(config)], name="s")]}, plugins=PLUGINS
    )
    for _ in range(3):
        async with http.get(gw.url + "/") as response:
            assert response.status == 200
            assert "RateLimit" not in response.headers
    async with http.get(gw.url + "/", headers={"X-Api-Key": "k"}) as response:
        assert response.status == 200
        assert response.headers["X-RateLimit-Remaining"] == "0"
    values = gw.gateway.runtime.services.metrics.snapshot()["kairos_ratelimit_decisions"]["values"]
    assert values[("s", "1-per-1m", "skipped")] == 3
    assert values[("s", "1-per-1m", "allowed")] == 1


async def test_consumer_and_claim_keys_after_auth(kairos_gateway, echo_backend, http) -> None:
    config = {
        "limits": [
            {"rate": "1/m", "key": ["consumer"], "name": "per-user"},
            {"rate": "3/m", "key": ["claim:org.id"], "name": "per-org"},
        ]
    }
    gw = await kairos_gateway(
        {
            "routes": [
                route(echo_backend, [{"name": "header-auth"}, limiter(config)]),
            ]
        },
        plugins=PLUGINS,
    )
    ann, bob = {"X-User": "ann", "X-Org": "o1"}, {"X-User": "bob", "X-Org": "o1"}
    assert await statuses(http, gw.url + "/", 2, headers=ann) == [200, 429]
    assert await statuses(http, gw.url + "/", 1, headers=bob) == [200]
    carl = {"X-User": "carl", "X-Org": "o1"}
    assert await statuses(http, gw.url + "/", 1, headers=carl) == [200]
    dana = {"X-User": "dana", "X-Org": "o1"}  # org o1 has used its 3
    assert await statuses(http, gw.url + "/", 1, headers=dana) == [429]
    assert await statuses(http, gw.url + "/", 1, headers={"X-User": "eve"}) == [400]


async def test_pre_auth_component_limits_before_authentication(
    kairos_gateway, echo_backend, http
) -> None:
    gw = await kairos_gateway(
        {
            "routes": [
                route(
                    echo_backend,
                    [
                        {"name": "header-auth"},
                        limiter({"limits": [{"rate": "2/m"}]}, "rate-limit-pre-auth"),
                    ],
                )
            ]
        },
        plugins=PLUGINS,
    )
    # unauthenticated requests are refused by auth (401), but still count per IP
    assert await statuses(http, gw.url + "/", 3) == [401, 401, 429]
    route_info = gw.gateway.runtime.routes[0].chain
    assert [link["name"] for link in route_info][:2] == ["rate-limit-pre-auth", "header-auth"]


async def test_pre_auth_component_refuses_consumer_keys(kairos_gateway, echo_backend) -> None:
    config = {"limits": [{"rate": "1/s", "key": ["consumer"]}]}
    with pytest.raises(ConfigError) as caught:
        await kairos_gateway(
            {"routes": [route(echo_backend, [limiter(config, "rate-limit-pre-auth")])]},
            plugins=PLUGINS,
        )
    assert "routes[0].plugins[0].config" in str(caught.value)
    assert "only known after authentication" in str(caught.value)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"limits": [{"rate": "ten per second"}]}, "rate"),
        ({"limits": [{"limit": 5}]}, "needs a `window`"),
        ({"limits": [{"algorithm": "concurrency", "limit": 2, "window": 1}]}, "only `limit`"),
        ({"limits": [{"rate": "1/s", "key": ["cookie:x"]}]}, "key"),
        ({"limits": [{"rate": "1/s", "algorithm": "leaky"}]}, "algorithm"),
        ({"limits": [{"rate": "1/s"}, {"rate": "1/s"}]}, "share the name"),
        ({"limits": []}, "limits"),
    ],
)
async def test_bad_settings_name_the_field(
    kairos_gateway, echo_backend, config: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        await kairos_gateway({"routes": [route(echo_backend, [limiter(config)])]}, plugins=PLUGINS)
    text = str(caught.value)
    assert "routes[0].plugins[0].config" in text
    assert message in text


async def test_header_styles_and_quiet_allowed_responses(
    kairos_gateway, echo_backend, http
) -> None:
    classic = {"limits": [{"rate": "5/m"}], "headers": {"style": "classic"}}
    quiet = {"limits": [{"rate": "1/m"}], "headers": {"on_allowed": False}}
    gw = await kairos_gateway(
        {
            "routes": [
                route(echo_backend, [limiter(classic)], prefix="/classic"),
                route(echo_backend, [limiter(quiet)], prefix="/quiet"),
            ]
        },
        plugins=PLUGINS,
    )
    async with http.get(gw.url + "/classic") as response:
        assert response.headers["X-RateLimit-Remaining"] == "4"
        assert "RateLimit" not in response.headers
    async with http.get(gw.url + "/quiet") as response:
        assert "X-RateLimit-Remaining" not in response.headers
    async with http.get(gw.url + "/quiet") as response:
        assert response.status == 429
        assert response.headers["X-RateLimit-Remaining"] == "0"  # refusals always explain


async def test_global_entry_and_shared_namespace(kairos_gateway, echo_backend, http) -> None:
    shared = {"limits": [{"rate": "2/m"}], "namespace": "team"}
    gw = await kairos_gateway(
        {
            "routes": [
                route(echo_backend, [limiter(shared)], prefix="/a"),
                route(echo_backend, [limiter(shared)], prefix="/b"),
            ]
        },
        plugins=PLUGINS,
    )
    assert await statuses(http, gw.url + "/a", 1) == [200]
    assert await statuses(http, gw.url + "/b", 2) == [200, 429]


async def test_decisions_are_counted_in_metrics(kairos_gateway, echo_backend, http) -> None:
    gw = await kairos_gateway(
        {"routes": [route(echo_backend, [limiter({"limits": [{"rate": "1/m"}]})], name="m")]},
        plugins=PLUGINS,
    )
    await statuses(http, gw.url + "/", 3)
    values = gw.gateway.runtime.services.metrics.snapshot()["kairos_ratelimit_decisions"]["values"]
    assert values[("m", "1-per-1m", "allowed")] == 1
    assert values[("m", "1-per-1m", "limited")] == 2


async def test_reload_keeps_counts_of_unchanged_limits(kairos_gateway, echo_backend, http) -> None:
    config = {
        "server": {"shutdown_timeout": 0.05},  # the old configuration retires quickly
        "routes": [route(echo_backend, [limiter({"limits": [{"rate": "2/m"}]})])],
    }
    gw = await kairos_gateway(config, plugins=PLUGINS)
    assert await statuses(http, gw.url + "/", 1) == [200]
    await gw.reload(config)
    await asyncio.sleep(0.2)  # the old configuration is closed by now; its counts live on
    assert await statuses(http, gw.url + "/", 2) == [200, 429]


async def test_consumer_entry_replaces_the_route_limit(kairos_gateway, echo_backend, http) -> None:
    route_limit = limiter({"limits": [{"rate": "1/m"}], "key": ["consumer"]})
    gold_limit = limiter({"limits": [{"rate": "3/m"}], "key": ["consumer"]})
    gw = await kairos_gateway(
        {
            "consumers": [{"name": "gold", "plugins": [gold_limit]}],
            "routes": [route(echo_backend, [{"name": "header-auth"}, route_limit])],
        },
        plugins=PLUGINS,
    )
    assert await statuses(http, gw.url + "/", 2, headers={"X-User": "basic"}) == [200, 429]
    assert await statuses(http, gw.url + "/", 4, headers={"X-User": "gold"}) == [
        200,
        200,
        200,
        429,
    ]
