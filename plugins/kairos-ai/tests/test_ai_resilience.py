"""A slow, failing or busy model never fails a request: timeout, breaker, concurrency cap."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import kairos_ai
from kairos_ai.guard import CLOSED, HALF_OPEN, OPEN, EndpointBreaker

from kairos_core.testing import Backend

HEADER = "X-Kairos-Balancer"


async def test_timeout_falls_back_without_waiting_for_the_model(
    kairos_gateway: Any,
    http: Any,
    fake_model: Any,
    named_backends: dict[str, Backend],
    ai_config: Any,
) -> None:
    fake_model.delay = 30.0
    config = ai_config(fake_model, named_backends, timeout=0.2, fallback="first")
    gw = await kairos_gateway(config, plugins=[kairos_ai])
    started = time.monotonic()
    async with http.get(gw.url + "/x") as response:
        assert response.status == 200
        assert response.headers["X-Backend"] == "b1"
        assert response.headers[HEADER] == "fallback; backend=b1; reason=timeout"
    assert time.monotonic() - started < 10  # the model would have taken 30 s
    metrics = gw.gateway.runtime.services.metrics.families
    latency = metrics["kairos_ai_llm_latency_seconds"].children[("models", "timeout")]
    assert sum(latency.counts) == 1
    assert 0.15 < latency.sum < 10


async def test_breaker_opens_after_repeated_failures_then_recovers(
    kairos_gateway: Any,
    http: Any,
    fake_model: Any,
    named_backends: dict[str, Backend],
    ai_config: Any,
) -> None:
    fake_model.status = 500
    config = ai_config(
        fake_model,
        named_backends,
        breaker={"failures": 3, "open_for": 2.0},
        cache={"ttl": 0},
    )
    gw = await kairos_gateway(config, plugins=[kairos_ai])
    reasons = []
    for _ in range(6):
        async with http.get(gw.url + "/x") as response:
            assert response.status == 200
            reasons.append(response.headers[HEADER].rpartition("reason=")[2])
    assert reasons == ["http_error"] * 3 + ["breaker_open"] * 3
    assert len(fake_model.calls) == 3
    gauge = gw.gateway.runtime.services.metrics.families["kairos_ai_llm_breaker_state"]
    assert gauge.children[("models",)].read() == OPEN
    fake_model.status = 200
    fake_model.choose = "b3"
    await asyncio.sleep(2.1)
    async with http.get(gw.url + "/x") as response:
        assert response.headers[HEADER] == "ai; backend=b3"
    assert gauge.children[("models",)].read() == CLOSED
    assert len(fake_model.calls) == 4


async def test_model_connection_refused_falls_back(
    kairos_gateway: Any, http: Any, named_backends: dict[str, Backend], ai_config: Any
) -> None:
    from kairos_core.testing.process import free_port

    class Nowhere:
        base_url = f"http://127.0.0.1:{free_port()}/v1"

    gw = await kairos_gateway(ai_config(Nowhere(), named_backends), plugins=[kairos_ai])
    async with http.get(gw.url + "/x") as response:
        assert response.status == 200
        assert response.headers[HEADER].endswith("reason=connection_error")


async def test_concurrency_cap_sends_the_excess_to_the_fallback(
    kairos_gateway: Any,
    http: Any,
    fake_model: Any,
    named_backends: dict[str, Backend],
    ai_config: Any,
) -> None:
    fake_model.delay = 0.5
    fake_model.choose = "b2"
    config = ai_config(fake_model, named_backends, max_concurrent=1, cache={"ttl": 0})
    gw = await kairos_gateway(config, plugins=[kairos_ai])

    async def get(path: str) -> str:
        async with http.get(gw.url + path) as response:
            assert response.status == 200
            return str(response.headers[HEADER])

    decisions = await asyncio.gather(*(get(f"/p{i}") for i in range(4)))
    assert sorted(d.partition(";")[0] for d in decisions) == [
        "ai",
        "fallback",
        "fallback",
        "fallback",
    ]
    assert sum(d.endswith("reason=busy") for d in decisions) == 3
    assert len(fake_model.calls) == 1


def test_breaker_states_with_an_injected_clock() -> None:
    now = [100.0]
    breaker = EndpointBreaker(2, 10.0, "test", clock=lambda: now[0])
    assert breaker.admits()
    breaker.record(False)
    assert breaker.state == CLOSED
    breaker.record(False)
    assert breaker.state == OPEN
    assert not breaker.admits()
    now[0] += 9.9
    assert not breaker.admits()
    now[0] += 0.2
    assert breaker.admits()  # the one trial call
    assert breaker.state == HALF_OPEN
    assert not breaker.admits()
    breaker.record(False)  # the trial failed: open again at once
    assert breaker.state == OPEN
    now[0] += 10.1
    assert breaker.admits()
    breaker.record(True)
    assert breaker.state == CLOSED
    assert breaker.admits()
    assert breaker.admits()
