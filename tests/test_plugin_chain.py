"""Chains built at load: phase order, priority, scopes, per-route disable, consumer chains."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from kairos_core import (
    AuthFailure,
    AuthPlugin,
    Consumer,
    Phase,
    RequestContext,
    Response,
    StagePlugin,
    error_response,
    hookimpl,
)
from kairos_core.config import ConfigError
from kairos_core.testing import running_gateway


class Tag(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str = ""


def tagger(name: str):
    def build(config: Tag, context: Any):
        label = config.label or f"{name}@{context.scope}"

        async def stage(ctx: RequestContext, call_next):
            ctx.headers.add("X-Trail", label)
            return await call_next(ctx)

        return stage

    return build


class TokenAuth(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tokens: dict[str, str]


class Token:
    challenge = 'Token realm="test"'

    def __init__(self, config: TokenAuth, context: Any) -> None:
        self.tokens = config.tokens
        self.consumers = context.services.consumers

    async def authenticate(self, ctx: RequestContext) -> Consumer | None:
        token = ctx.request.headers.get("X-Token")
        if token is None:
            return None
        name = self.tokens.get(token)
        if name is None:
            raise AuthFailure("unknown token", challenge='Token error="invalid"')
        if name == "banned":
            raise AuthFailure("banned", status=403, error_type="forbidden")
        return self.consumers.get(name) or Consumer(name, configured=False)


class TestPlugins:
    @hookimpl
    def register_filters(self, register):
        register(StagePlugin(name="pre", build=tagger("pre"), config_model=Tag))

    @hookimpl
    def register_transformers(self, register):
        register(StagePlugin(name="low", build=tagger("low"), config_model=Tag, priority=1))
        register(StagePlugin(name="high", build=tagger("high"), config_model=Tag, priority=50))

    @hookimpl
    def register_rate_limiters(self, register):
        register(StagePlugin(name="limit", build=tagger("limit"), config_model=Tag))

    @hookimpl
    def register_loggers(self, register):
        register(StagePlugin(name="outer", build=tagger("outer"), config_model=Tag))

    @hookimpl
    def register_authenticators(self, register):
        register(AuthPlugin(name="token", build=Token, config_model=TokenAuth))


PLUGINS = [TestPlugins()]


def trail(echo_backend) -> list[str]:
    return [v for k, v in echo_backend.records[-1].header_list if k == "X-Trail"]


async def test_phase_and_priority_order(kairos_gateway, echo_backend, http) -> None:
    gw = await kairos_gateway(
        {
            "plugins": [
                {"name": "low"},
                {"name": "limit"},
                {"name": "high"},
                {"name": "pre"},
                {"name": "outer"},
            ],
            "routes": [{"prefix": "/", "upstream": {"backends": [{"url": echo_backend.url}]}}],
        },
        plugins=PLUGINS,
    )
    async with http.get(gw.url + "/") as response:
        assert response.status == 200
    assert trail(echo_backend) == [
        "outer@global",
        "pre@global",
        "limit@global",
        "high@global",
        "low@global",
    ]


async def test_route_overrides_priority_replaces_and_disables(
    kairos_gateway, echo_backend, http
) -> None:
    upstream = {"backends": [{"url": echo_backend.url}]}
    gw = await kairos_gateway(
        {
            "plugins": [{"name": "low"}, {"name": "high"}, {"name": "pre"}],
            "routes": [
                {
                    "path": "/custom",
                    "upstream": upstream,
                    "plugins": [
                        {"name": "low", "priority": 99, "config": {"label": "low-route"}},
                        {"name": "pre", "enabled": False},
                    ],
                },
                {"path": "/plain", "upstream": upstream},
            ],
        },
        plugins=PLUGINS,
    )
    async with http.get(gw.url + "/custom") as response:
        assert response.status == 200
    assert trail(echo_backend) == ["low-route", "high@global"]
    async with http.get(gw.url + "/plain") as response:
        assert response.status == 200
    assert trail(echo_backend) == ["pre@global", "high@global", "low@global"]


async def test_auth_any_of_and_consumer_chains(kairos_gateway, echo_backend, http) -> None:
    gw = await kairos_gateway(
        {
            "consumers": [
                {
                    "name": "alice",
                    "metadata": {"tier": "gold"},
                    "plugins": [{"name": "high", "config": {"label": "alice-high"}}],
                },
                {"name": "bob"},
            ],
            "plugins": [{"name": "high"}, {"name": "pre"}],
            "routes": [
                {
                    "prefix": "/",
                    "upstream": {"backends": [{"url": echo_backend.url}]},
                    "plugins": [
                        {
                            "name": "token",
                            "config": {"tokens": {"a": "alice", "b": "bob", "x": "banned"}},
                        }
                    ],
                }
            ],
        },
        plugins=PLUGINS,
    )
    async with http.get(gw.url + "/") as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"] == 'Token realm="test"'
        assert (await response.json())["type"] == "unauthorized"
    async with http.get(gw.url + "/", headers={"X-Token": "nope"}) as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"] == 'Token error="invalid"'
    async with http.get(gw.url + "/", headers={"X-Token": "x"}) as response:
        assert response.status == 403
    assert echo_backend.records == []
    async with http.get(gw.url + "/", headers={"X-Token": "a"}) as response:
        assert response.status == 200
    assert trail(echo_backend) == ["pre@global", "alice-high"]
    assert echo_backend.records[-1].headers["X-Consumer"] == "alice"
    async with http.get(gw.url + "/", headers={"X-Token": "b"}) as response:
        assert response.status == 200
    assert trail(echo_backend) == ["pre@global", "high@global"]
    assert echo_backend.records[-1].headers["X-Consumer"] == "bob"


async def test_stage_can_answer_without_the_upstream(kairos_gateway, echo_backend, http) -> None:
    class Blocker:
        @hookimpl
        def register_filters(self, register):
            async def block(ctx: RequestContext, call_next) -> Response:
                if ctx.params.get("id") == "blocked":
                    return error_response(403, "blocked", "not this one", ctx.request_id)
                return await call_next(ctx)

            register(StagePlugin(name="blocker", build=lambda c, b: block))

    gw = await kairos_gateway(
        {
            "routes": [
                {
                    "path": "/items/{id}",
                    "upstream": {"backends": [{"url": echo_backend.url}]},
                    "plugins": [{"name": "blocker"}],
                }
            ]
        },
        plugins=[Blocker()],
    )
    async with http.get(gw.url + "/items/blocked") as response:
        assert response.status == 403
    async with http.get(gw.url + "/items/fine") as response:
        assert response.status == 200
    assert len(echo_backend.records) == 1


async def test_a_stage_that_raises_gives_500_and_other_routes_work(
    kairos_gateway, echo_backend, http, caplog
) -> None:
    class Broken:
        @hookimpl
        def register_transformers(self, register):
            async def explode(ctx: RequestContext, call_next) -> Response:
                raise RuntimeError("bug in a plugin")

            register(StagePlugin(name="broken", build=lambda c, b: explode))

    upstream = {"backends": [{"url": echo_backend.url}]}
    gw = await kairos_gateway(
        {
            "routes": [
                {"path": "/bad", "upstream": upstream, "plugins": [{"name": "broken"}]},
                {"path": "/good", "upstream": upstream},
            ]
        },
        plugins=[Broken()],
    )
    async with http.get(gw.url + "/bad") as response:
        assert response.status == 500
        body = await response.json()
        assert body["type"] == "internal_error"
        assert body["request_id"] == response.headers["X-Request-ID"]
    logged = [r for r in caplog.records if r.levelname == "ERROR" and r.exc_info]
    assert any(body["request_id"] in r.getMessage() for r in logged), (
        "the error is logged with its id"
    )
    assert "bug in a plugin" not in json.dumps(body)  # no internal detail for the client
    async with http.get(gw.url + "/good") as response:
        assert response.status == 200


async def test_plugin_config_errors_are_located(echo_backend) -> None:
    config = {
        "consumers": [{"name": "carol", "plugins": [{"name": "pre"}]}],
        "routes": [
            {
                "path": "/a",
                "upstream": {"backends": [{"url": echo_backend.url}]},
                "plugins": [
                    {"name": "high", "config": {"lable": "typo"}},
                    {"name": "round_robin"},
                    {"name": "ghost"},
                ],
            }
        ],
    }
    with pytest.raises(ConfigError) as info:
        async with running_gateway(config, plugins=PLUGINS):
            pass
    problems = {p.loc: p.message for p in info.value.problems}
    assert "unknown field" in problems[("routes", 0, "plugins", 0, "config", "lable")]
    assert "is a balancer" in problems[("routes", 0, "plugins", 1, "name")]
    assert "plugin 'ghost' is not installed" in problems[("routes", 0, "plugins", 2, "name")]
    assert "cannot be set per consumer" in problems[("consumers", 0, "plugins", 0, "name")]


def test_phases_are_ordered() -> None:
    assert [p.name for p in sorted(Phase)] == [
        "LOG",
        "PRE_AUTH",
        "AUTH",
        "TRAFFIC",
        "CACHE",
        "TRANSFORM",
    ]
