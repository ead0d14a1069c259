"""The stage hooks (filters, rate limiters, caches, transformers, loggers) through a real gateway."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from kairos_core import (
    BuildContext,
    Handler,
    Middleware,
    NoConfig,
    RequestContext,
    Response,
    StagePlugin,
    error_response,
    hookimpl,
)
from kairos_core.config import ConfigError

Register = Callable[[StagePlugin[Any]], None]


def traced(name: str, stage: Middleware) -> Middleware:
    """Wrap a stage so it appends `name` to the X-Trace header sent upstream."""

    async def wrapper(ctx: RequestContext, call_next: Handler) -> Response:
        trace = ctx.headers.get("X-Trace")
        ctx.headers["X-Trace"] = f"{trace},{name}" if trace else name
        return await stage(ctx, call_next)

    return wrapper


async def passthrough(ctx: RequestContext, call_next: Handler) -> Response:
    """A stage that does nothing but continue."""
    return await call_next(ctx)


class LimitConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int


class StampConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: str = "1"


class StageProbe:
    """An in-test plugin implementing every stage hook; the logger records final responses."""

    def __init__(self) -> None:
        self.logged: list[tuple[str, int]] = []

    @hookimpl
    def register_filters(self, register: Register) -> None:
        def build(config: NoConfig, context: BuildContext) -> Middleware:
            async def deny(ctx: RequestContext, call_next: Handler) -> Response:
                if "X-Deny" in ctx.request.headers:
                    return error_response(403, "forbidden", "denied by filter", ctx.request_id)
                return await call_next(ctx)

            return traced("filter", deny)

        register(StagePlugin(name="deny", build=build))

    @hookimpl
    def register_rate_limiters(self, register: Register) -> None:
        def build(config: LimitConfig, context: BuildContext) -> Middleware:
            seen = [0]  # one counter per built instance (per route here)

            async def limit(ctx: RequestContext, call_next: Handler) -> Response:
                seen[0] += 1
                if seen[0] > config.limit:
                    return error_response(429, "too_many_requests", "slow down", ctx.request_id)
                return await call_next(ctx)

            return traced("limit", limit)

        register(StagePlugin(name="limit", build=build, config_model=LimitConfig))

    @hookimpl
    def register_caches(self, register: Register) -> None:
        def build(config: NoConfig, context: BuildContext) -> Middleware:
            stored: dict[str, tuple[int, bytes]] = {}

            async def memo(ctx: RequestContext, call_next: Handler) -> Response:
                hit = stored.get(ctx.upstream_target)
                if hit is not None:
                    response = Response(hit[0], body=hit[1])
                    response.headers["X-Cache"] = "hit"
                    return response
                response = await call_next(ctx)
                stored[ctx.upstream_target] = (response.status, await response.read())
                response.headers["X-Cache"] = "miss"
                return response

            return traced("cache", memo)

        register(StagePlugin(name="memo", build=build))

    @hookimpl
    def register_transformers(self, register: Register) -> None:
        def build(config: StampConfig, context: BuildContext) -> Middleware:
            async def stamp(ctx: RequestContext, call_next: Handler) -> Response:
                ctx.headers["X-Stamp"] = config.value
                response = await call_next(ctx)
                response.headers["X-Stamped"] = config.value
                return response

            return traced("stamp", stamp)

        def build_second(config: NoConfig, context: BuildContext) -> Middleware:
            return traced("second", passthrough)

        register(StagePlugin(name="stamp", build=build, config_model=StampConfig, priority=10))
        register(StagePlugin(name="second", build=build_second, priority=5))

    @hookimpl
    def register_loggers(self, register: Register) -> None:
        def build(config: NoConfig, context: BuildContext) -> Middleware:
            route = context.route_name or "?"

            async def record(ctx: RequestContext, call_next: Handler) -> Response:
                response = await call_next(ctx)
                self.logged.append((route, response.status))
                return response

            return traced("log", record)

        register(StagePlugin(name="recorder", build=build))


def config(backend_url: str, *plugins: dict[str, Any]) -> dict[str, Any]:
    """One route named `r` with the given plugin entries."""
    return {
        "routes": [
            {
                "name": "r",
                "prefix": "/",
                "upstream": {"backends": [{"url": backend_url}]},
                "plugins": list(plugins),
            }
        ]
    }


ALL = (
    {"name": "second"},
    {"name": "stamp", "config": {"value": "v"}},
    {"name": "memo"},
    {"name": "limit", "config": {"limit": 100}},
    {"name": "deny"},
    {"name": "recorder"},
)


async def test_stages_run_in_phase_order_whatever_the_config_order(
    kairos_gateway, echo_backend, http
):
    probe = StageProbe()
    gw = await kairos_gateway(config(echo_backend.url, *ALL), plugins=[probe])
    async with http.get(gw.url + "/a") as response:
        assert response.status == 200
        seen = (await response.json())["headers"]
        assert response.headers["X-Stamped"] == "v"
    assert seen["X-Trace"] == "log,filter,limit,cache,stamp,second"
    assert seen["X-Stamp"] == "v"
    assert probe.logged == [("r", 200)]


async def test_entry_priority_overrides_the_plugin_default(kairos_gateway, echo_backend, http):
    entries = ({"name": "stamp"}, {"name": "second", "priority": 50})
    gw = await kairos_gateway(config(echo_backend.url, *entries), plugins=[StageProbe()])
    async with http.get(gw.url + "/") as response:
        assert (await response.json())["headers"]["X-Trace"] == "second,stamp"


async def test_filter_refuses_before_later_phases_and_logger_sees_it(
    kairos_gateway, echo_backend, http
):
    probe = StageProbe()
    gw = await kairos_gateway(config(echo_backend.url, *ALL), plugins=[probe])
    async with http.get(gw.url + "/", headers={"X-Deny": "1"}) as response:
        assert response.status == 403
        assert (await response.json())["type"] == "forbidden"
        assert "X-Stamped" not in response.headers
    assert echo_backend.records == []
    assert probe.logged == [("r", 403)]


async def test_rate_limiter_refuses_over_its_limit(kairos_gateway, echo_backend, http):
    probe = StageProbe()
    entries = ({"name": "limit", "config": {"limit": 2}}, {"name": "recorder"})
    gw = await kairos_gateway(config(echo_backend.url, *entries), plugins=[probe])
    statuses = []
    for _ in range(3):
        async with http.get(gw.url + "/") as response:
            statuses.append(response.status)
    assert statuses == [200, 200, 429]
    assert len(echo_backend.records) == 2
    assert [status for _, status in probe.logged] == [200, 200, 429]


async def test_cache_answers_without_the_upstream(kairos_gateway, echo_backend, http):
    gw = await kairos_gateway(config(echo_backend.url, {"name": "memo"}), plugins=[StageProbe()])
    bodies = []
    for expected in ("miss", "hit"):
        async with http.get(gw.url + "/item?id=1") as response:
            assert response.headers["X-Cache"] == expected
            bodies.append(await response.read())
    assert bodies[0] == bodies[1]
    assert len(echo_backend.records) == 1


async def test_unknown_setting_of_a_stage_names_the_field(kairos_gateway, echo_backend):
    entry = {"name": "limit", "config": {"limit": 1, "burst": 2}}
    with pytest.raises(ConfigError, match=r"routes\[0\]\.plugins\[0\]\.config\.burst: unknown"):
        await kairos_gateway(config(echo_backend.url, entry), plugins=[StageProbe()])
