"""Reloads, metrics binding, callers without a request, and the never-fail guarantee."""

from __future__ import annotations

from typing import Any

import kairos_ai
import pytest
from kairos_ai import DECISION_KEY, AiBalancer, AiBalancerConfig, Decision

from kairos_core import UpstreamPool
from kairos_core.config.models import UpstreamConfig
from kairos_core.testing import Backend

HEADER = "X-Kairos-Balancer"


async def test_reload_builds_a_new_selector_bound_to_the_metrics(
    kairos_gateway: Any,
    http: Any,
    fake_model: Any,
    named_backends: dict[str, Backend],
    ai_config: Any,
) -> None:
    gw = await kairos_gateway(ai_config(fake_model, named_backends), plugins=[kairos_ai])
    async with http.get(gw.url + "/x") as response:
        assert response.headers[HEADER] == "ai; backend=b1"
    old: AiBalancer = gw.gateway.runtime.pools["models"].balancer
    fake_model.choose = "b3"
    await gw.reload(ai_config(fake_model, named_backends, instruction="Prefer b3."))
    async with http.get(gw.url + "/x") as response:
        assert response.headers[HEADER] == "ai; backend=b3"
    assert fake_model.calls[-1]["body"]["messages"][0]["content"].startswith("Prefer b3.")
    new: AiBalancer = gw.gateway.runtime.pools["models"].balancer
    assert new is not old
    assert new.recorder is not old.recorder
    families = gw.gateway.runtime.services.metrics.families
    assert families["kairos_ai_decisions"].children[("models", "b3", "ai", "")].value == 1
    tokens = families["kairos_ai_llm_tokens"].children
    assert tokens[("models", "prompt")].value == 2 * 42
    assert tokens[("models", "completion")].value == 2 * 7


async def test_an_internal_failure_still_serves_the_request(
    kairos_gateway: Any,
    http: Any,
    fake_model: Any,
    named_backends: dict[str, Backend],
    ai_config: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gw = await kairos_gateway(
        ai_config(fake_model, named_backends, fallback="first"), plugins=[kairos_ai]
    )
    balancer: AiBalancer = gw.gateway.runtime.pools["models"].balancer

    def broken(ctx: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(balancer.reader, "from_context", broken)
    async with http.get(gw.url + "/x") as response:
        assert response.status == 200
        assert response.headers[HEADER] == "fallback; backend=b1; reason=internal_error"


async def test_callers_without_a_request_get_the_fallback(fake_model: Any) -> None:
    config = UpstreamConfig.model_validate(
        {
            "backends": [
                {"name": "a", "url": "http://127.0.0.1:9"},
                {"name": "b", "url": "http://127.0.0.1:10"},
            ]
        }
    )
    settings = AiBalancerConfig.model_validate(
        {"endpoint": {"base_url": fake_model.base_url, "model": "m"}, "fallback": "first"}
    )
    pool = UpstreamPool("p", config, None, lambda p: AiBalancer(settings, p))  # type: ignore[arg-type]
    balancer: AiBalancer = pool.balancer  # type: ignore[assignment]
    try:
        chosen = await balancer.pick_async(None, pool.candidates)
        assert chosen is not None
        assert chosen.name == "a"
        assert balancer.pick(None, pool.candidates) is pool.backends[0]
        assert fake_model.calls == []
    finally:
        await balancer.close()
    assert Decision("a", "fallback", "no_request").header_value() == (
        "fallback; backend=a; reason=no_request"
    )
    assert DECISION_KEY == "ai_decision"


async def test_closing_the_selector_mid_call_still_serves_the_request(
    kairos_gateway: Any,
    http: Any,
    fake_model: Any,
    named_backends: dict[str, Backend],
    ai_config: Any,
) -> None:
    import asyncio

    fake_model.delay = 5.0
    gw = await kairos_gateway(
        ai_config(fake_model, named_backends, fallback="first", timeout=10), plugins=[kairos_ai]
    )
    balancer: AiBalancer = gw.gateway.runtime.pools["models"].balancer

    async def get() -> str:
        async with http.get(gw.url + "/x") as response:
            assert response.status == 200
            return str(response.headers[HEADER])

    request = asyncio.create_task(get())
    while not fake_model.calls:
        await asyncio.sleep(0.01)
    await balancer.close()
    assert await request == "fallback; backend=b1; reason=cancelled"
