"""register_balancers: a plugin strategy picks backends, observes results, can replace a built-in."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from kairos_core import (
    Backend,
    BalancerPlugin,
    NoConfig,
    RequestContext,
    UpstreamPool,
    hookimpl,
)
from kairos_core.config import ConfigError


class PinnedConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    index: int


class Pinned:
    """Always the candidate at `index`; remembers what `observe` was told."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.observed: list[tuple[str, bool]] = []
        self.lifecycle: list[str] = []

    async def start(self) -> None:
        self.lifecycle.append("start")

    async def close(self) -> None:
        self.lifecycle.append("close")

    def pick(self, ctx: RequestContext | None, candidates: Sequence[Backend]) -> Backend | None:
        return candidates[self.index % len(candidates)]

    def observe(self, backend: Backend, seconds: float, ok: bool) -> None:
        assert seconds >= 0
        self.observed.append((backend.name, ok))


class BalancerProbe:
    """Registers `pinned`; with `replace_default`, also a `round_robin` that always picks the last."""

    def __init__(self, replace_default: bool = False) -> None:
        self.replace_default = replace_default
        self.built: list[Pinned] = []

    @hookimpl
    def register_balancers(self, register: Callable[[BalancerPlugin[Any]], None]) -> None:
        def build(config: PinnedConfig, pool: UpstreamPool) -> Pinned:
            balancer = Pinned(config.index)
            self.built.append(balancer)
            return balancer

        register(BalancerPlugin(name="pinned", build=build, config_model=PinnedConfig))
        if self.replace_default:
            register(BalancerPlugin(name="round_robin", build=lambda c, p: Pinned(-1)))


def pool(*urls: str, balancer: Any = None) -> dict[str, Any]:
    """An upstream pool of `urls` with an optional balancer entry."""
    out: dict[str, Any] = {"backends": [{"url": u, "name": f"b{i}"} for i, u in enumerate(urls)]}
    if balancer is not None:
        out["balancer"] = balancer
    return out


async def test_plugin_balancer_picks_and_observes(kairos_gateway, backend_factory, http):
    first, second = await backend_factory(), await backend_factory()
    probe = BalancerProbe()
    upstream = pool(first.url, second.url, balancer={"name": "pinned", "config": {"index": 1}})
    gw = await kairos_gateway(
        {"upstreams": {"u": upstream}, "routes": [{"prefix": "/", "upstream": "u"}]},
        plugins=[probe],
    )
    for _ in range(3):
        async with http.get(gw.url + "/") as response:
            assert response.status == 200
    assert (len(first.records), len(second.records)) == (0, 3)


async def test_balancer_observes_a_failed_attempt(kairos_gateway, http):
    probe = BalancerProbe()
    upstream = pool("http://127.0.0.1:1", balancer={"name": "pinned", "config": {"index": 0}})
    gw = await kairos_gateway({"routes": [{"prefix": "/", "upstream": upstream}]}, plugins=[probe])
    async with http.get(gw.url + "/") as response:
        assert response.status == 502
    assert probe.built[0].observed == [("b0", False)]


async def test_balancer_observes_a_successful_attempt(kairos_gateway, echo_backend, http):
    probe = BalancerProbe()
    upstream = pool(echo_backend.url, balancer={"name": "pinned", "config": {"index": 0}})
    gw = await kairos_gateway({"routes": [{"prefix": "/", "upstream": upstream}]}, plugins=[probe])
    async with http.get(gw.url + "/") as response:
        assert response.status == 200
    assert probe.built[0].observed == [("b0", True)]


async def test_balancer_is_started_with_its_pool_and_closed_with_it(kairos_gateway, echo_backend):
    probe = BalancerProbe()
    upstream = pool(echo_backend.url, balancer={"name": "pinned", "config": {"index": 0}})
    gw = await kairos_gateway({"routes": [{"prefix": "/", "upstream": upstream}]}, plugins=[probe])
    assert probe.built[0].lifecycle == ["start"]
    await gw.gateway.stop()
    assert probe.built[0].lifecycle == ["start", "close"]


async def test_installed_plugin_replaces_builtin_round_robin(kairos_gateway, backend_factory, http):
    first, second = await backend_factory(), await backend_factory()
    gw = await kairos_gateway(
        {"routes": [{"prefix": "/", "upstream": pool(first.url, second.url)}]},
        plugins=[BalancerProbe(replace_default=True)],
    )
    for _ in range(4):
        async with http.get(gw.url + "/") as response:
            assert response.status == 200
    assert (len(first.records), len(second.records)) == (0, 4)


async def test_balancer_settings_are_validated(kairos_gateway, echo_backend):
    upstream = pool(echo_backend.url, balancer={"name": "pinned", "config": {"index": "x"}})
    with pytest.raises(ConfigError, match=r"upstreams\.u\.balancer\.config\.index"):
        await kairos_gateway(
            {"upstreams": {"u": upstream}, "routes": [{"prefix": "/", "upstream": "u"}]},
            plugins=[BalancerProbe()],
        )


async def test_balancer_used_as_a_stage_is_an_error(kairos_gateway, echo_backend):
    route = {"prefix": "/", "upstream": pool(echo_backend.url), "plugins": [{"name": "pinned"}]}
    with pytest.raises(ConfigError, match="is a balancer"):
        await kairos_gateway({"routes": [route]}, plugins=[BalancerProbe()])


def test_no_config_balancer_model_rejects_settings():
    with pytest.raises(ValueError, match="extra"):
        NoConfig.model_validate({"x": 1})
