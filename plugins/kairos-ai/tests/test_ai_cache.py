"""The decision cache: similar requests reuse a recent answer; concurrent ones share one call."""

from __future__ import annotations

import asyncio
from typing import Any

import kairos_ai
from kairos_ai.cache import DecisionCache

from kairos_core.testing import Backend

HEADER = "X-Kairos-Balancer"


async def _decision(http: Any, url: str, **kwargs: Any) -> str:
    async with http.get(url, **kwargs) as response:
        assert response.status == 200
        return str(response.headers[HEADER])


async def test_cache_prevents_repeat_calls_until_the_ttl_passes(
    kairos_gateway: Any,
    http: Any,
    fake_model: Any,
    named_backends: dict[str, Backend],
    ai_config: Any,
) -> None:
    fake_model.choose = "b2"
    config = ai_config(
        fake_model, named_backends, cache={"ttl": 30, "key": ["method", "path", "header:x-tenant"]}
    )
    gw = await kairos_gateway(config, plugins=[kairos_ai])
    balancer = gw.gateway.runtime.pools["models"].balancer
    now = [1000.0]
    balancer.cache = DecisionCache(30, 100, clock=lambda: now[0])
    acme = {"headers": {"X-Tenant": "acme"}}
    assert await _decision(http, gw.url + "/a?x=1", **acme) == "ai; backend=b2"
    assert await _decision(http, gw.url + "/a?x=2", **acme) == "cache; backend=b2"
    assert await _decision(http, gw.url + "/a", **acme) == "cache; backend=b2"
    assert len(fake_model.calls) == 1
    assert await _decision(http, gw.url + "/a", headers={"X-Tenant": "globex"}) == "ai; backend=b2"
    assert await _decision(http, gw.url + "/b", **acme) == "ai; backend=b2"
    assert len(fake_model.calls) == 3
    now[0] += 29
    assert await _decision(http, gw.url + "/a", **acme) == "cache; backend=b2"
    now[0] += 2
    assert await _decision(http, gw.url + "/a", **acme) == "ai; backend=b2"
    assert len(fake_model.calls) == 4
    decisions = gw.gateway.runtime.services.metrics.families["kairos_ai_decisions"].children
    assert decisions[("models", "b2", "ai", "")].value == 4
    assert decisions[("models", "b2", "cache", "")].value == 3


async def test_cached_backend_that_went_down_is_asked_again(
    kairos_gateway: Any,
    http: Any,
    fake_model: Any,
    named_backends: dict[str, Backend],
    ai_config: Any,
) -> None:
    fake_model.choose = "b2"
    gw = await kairos_gateway(ai_config(fake_model, named_backends), plugins=[kairos_ai])
    assert await _decision(http, gw.url + "/a") == "ai; backend=b2"
    pool = gw.gateway.runtime.pools["models"]
    next(b for b in pool.backends if b.name == "b2").set_healthy(False)
    fake_model.choose = "b3"
    assert await _decision(http, gw.url + "/a") == "ai; backend=b3"
    assert await _decision(http, gw.url + "/a") == "cache; backend=b3"
    assert len(fake_model.calls) == 2


async def test_concurrent_similar_requests_share_one_call(
    kairos_gateway: Any,
    http: Any,
    fake_model: Any,
    named_backends: dict[str, Backend],
    ai_config: Any,
) -> None:
    fake_model.choose = "b3"
    fake_model.delay = 0.3
    gw = await kairos_gateway(ai_config(fake_model, named_backends), plugins=[kairos_ai])
    decisions = await asyncio.gather(*(_decision(http, gw.url + "/same") for _ in range(5)))
    assert decisions == ["ai; backend=b3"] * 5
    assert len(fake_model.calls) == 1


async def test_body_can_be_part_of_the_key(
    kairos_gateway: Any,
    http: Any,
    fake_model: Any,
    named_backends: dict[str, Backend],
    ai_config: Any,
) -> None:
    config = ai_config(
        fake_model, named_backends, request={"body_bytes": 16}, cache={"key": ["path", "body"]}
    )
    gw = await kairos_gateway(config, plugins=[kairos_ai])
    kinds = []
    for body in (b'{"kind": "a"}', b'{"kind": "a"}', b'{"kind": "b"}'):
        headers = {"Content-Type": "application/json"}
        async with http.post(gw.url + "/q", data=body, headers=headers) as response:
            kinds.append(response.headers[HEADER].partition(";")[0])
            served = named_backends[response.headers["X-Backend"]].records[-1]
            assert served.body == body
    assert kinds == ["ai", "cache", "ai"]


def test_cache_is_bounded_and_least_recent_goes_first() -> None:
    now = [0.0]
    cache = DecisionCache(10, 2, clock=lambda: now[0])
    cache.put("a", "b1")
    cache.put("b", "b2")
    assert cache.get("a") == "b1"  # a is now the most recent
    cache.put("c", "b3")
    assert cache.get("b") is None
    assert cache.get("a") == "b1"
    assert cache.get("c") == "b3"
    assert len(cache) == 2
    disabled = DecisionCache(0, 2)
    disabled.put("a", "b1")
    assert disabled.get("a") is None
