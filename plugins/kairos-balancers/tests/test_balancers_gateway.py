"""Distribution and load-following of each balancer through a real gateway to real backends."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from aiohttp import web

from kairos_core.testing import echo_app


def pool_config(backends, balancer: Any, weights=None) -> dict[str, Any]:
    """One route `/` to an upstream `app` of `backends` (testing.Backend, name) pairs."""
    weights = weights or [1] * len(backends)
    return {
        "upstreams": {
            "app": {
                "balancer": balancer,
                "backends": [
                    {"url": b.url, "name": name, "weight": w}
                    for (b, name), w in zip(backends, weights, strict=True)
                ],
            }
        },
        "routes": [{"prefix": "/", "upstream": "app"}],
    }


async def start_echoes(backend_factory, *names: str):
    return [(await backend_factory(echo_app(name)), name) for name in names]


async def served_by(http, url: str, **kwargs: Any) -> str:
    async with http.get(url, **kwargs) as response:
        await response.read()
        return response.headers["X-Backend"]


async def tally(http, url: str, count: int) -> Counter[str]:
    return Counter([await served_by(http, url) for _ in range(count)])


async def settle(backend) -> None:
    """Wait (up to 5 s) until the gateway has released its requests in flight to `backend`."""
    for _ in range(1000):
        if not backend.in_flight:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"{backend.name} still has {backend.in_flight} requests in flight")


def holding_app(name: str, arrived: asyncio.Event, release: asyncio.Event, stream: bool):
    """A backend whose `/hold` requests wait for `release` (in the head, or mid-body)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.path != "/hold":
            return web.json_response({"backend": name}, headers={"X-Backend": name})
        arrived.set()
        if not stream:
            await release.wait()
            return web.json_response({"backend": name}, headers={"X-Backend": name})
        response = web.StreamResponse(headers={"X-Backend": name})
        await response.prepare(request)
        await response.write(b"first")
        await release.wait()
        await response.write(b"-rest")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def delayed_app(name: str, delay: float, status: int = 200):
    """A backend that answers after `delay` seconds with `status`."""

    async def handle(request: web.Request) -> web.Response:
        await asyncio.sleep(delay)
        return web.json_response({"backend": name}, status=status, headers={"X-Backend": name})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


async def test_weighted_round_robin_exact_order_and_shares(
    kairos_gateway, backend_factory, http
) -> None:
    backends = await start_echoes(backend_factory, "a", "b", "c")
    gw = await kairos_gateway(pool_config(backends, "weighted_round_robin", [5, 1, 1]))
    order = [await served_by(http, gw.url + "/") for _ in range(7)]
    assert order == list("aabacaa")
    assert await tally(http, gw.url + "/", 70) == {"a": 50, "b": 10, "c": 10}


async def test_weighted_round_robin_follows_health_changes(
    kairos_gateway, backend_factory, http
) -> None:
    backends = await start_echoes(backend_factory, "a", "b", "c")
    gw = await kairos_gateway(pool_config(backends, "weighted_round_robin", [3, 2, 1]))
    pool = gw.gateway.runtime.pools["app"]
    pool.backends[0].set_healthy(False)
    assert await tally(http, gw.url + "/", 30) == {"b": 20, "c": 10}
    pool.backends[0].set_healthy(True)
    assert await tally(http, gw.url + "/", 60) == {"a": 30, "b": 20, "c": 10}


async def test_weight_zero_gets_nothing(kairos_gateway, backend_factory, http) -> None:
    backends = await start_echoes(backend_factory, "a", "b")
    for balancer in ("weighted_round_robin", "least_connections", "random", "power_of_two"):
        gw = await kairos_gateway(pool_config(backends, balancer, [1, 0]))
        assert await tally(http, gw.url + "/", 20) == {"a": 20}


async def test_random_shares_within_statistical_bounds(
    kairos_gateway, backend_factory, http
) -> None:
    backends = await start_echoes(backend_factory, "a", "b", "c")
    gw = await kairos_gateway(pool_config(backends, "random", [2, 1, 1]))
    counts = await tally(http, gw.url + "/", 400)
    # binomial: a ~ 200 +- 10 (1 sigma), b and c ~ 100 +- 8.7; allow 5 sigma
    assert 150 <= counts["a"] <= 250
    assert 57 <= counts["b"] <= 143
    assert 57 <= counts["c"] <= 143


@pytest.mark.parametrize("stream", [False, True], ids=["held-head", "held-stream"])
async def test_least_connections_avoids_the_busy_backend(
    kairos_gateway, backend_factory, http, stream
) -> None:
    arrived, release = asyncio.Event(), asyncio.Event()
    slow = await backend_factory(holding_app("a", arrived, release, stream))
    backends = [(slow, "a"), *await start_echoes(backend_factory, "b", "c")]
    gw = await kairos_gateway(pool_config(backends, "least_connections"))
    busy = gw.gateway.runtime.pools["app"].backends[0]
    streaming = asyncio.Event()

    async def hold() -> bytes:
        async with http.get(gw.url + "/hold") as response:
            first = await response.content.readexactly(5)
            streaming.set()
            return first + await response.read()

    held = asyncio.create_task(hold())
    async with asyncio.timeout(5):
        await arrived.wait()
        if stream:
            await streaming.wait()
    assert busy.in_flight == 1
    assert await tally(http, gw.url + "/", 30) == {"b": 15, "c": 15}
    release.set()
    assert (await held).startswith(b"first" if stream else b'{"bac')
    await settle(busy)
    assert await tally(http, gw.url + "/", 30) == {"a": 10, "b": 10, "c": 10}


async def test_least_connections_spreads_concurrent_load(
    kairos_gateway, backend_factory, http
) -> None:
    backends = [(await backend_factory(delayed_app(n, 0.02)), n) for n in "abc"]
    backends.append((await backend_factory(delayed_app("slow", 0.2)), "slow"))
    gw = await kairos_gateway(pool_config(backends, "least_connections"))

    async def client() -> Counter[str]:
        return await tally(http, gw.url + "/", 8)

    counts = sum((await asyncio.gather(*(client() for _ in range(8)))), Counter())
    assert sum(counts.values()) == 64
    # the slow backend keeps each of its requests 10x longer, so it gets far fewer of them
    assert counts["slow"] * 2 < min(counts[n] for n in "abc")


async def test_power_of_two_avoids_the_busy_backend(kairos_gateway, backend_factory, http) -> None:
    arrived, release = asyncio.Event(), asyncio.Event()
    slow = await backend_factory(holding_app("a", arrived, release, stream=False))
    backends = [(slow, "a"), *await start_echoes(backend_factory, "b", "c")]
    gw = await kairos_gateway(pool_config(backends, "power_of_two"))
    busy = gw.gateway.runtime.pools["app"].backends[0]
    held = None
    async with asyncio.timeout(10):
        while not arrived.is_set():
            task = asyncio.create_task(served_by(http, gw.url + "/hold"))
            await asyncio.wait(
                [task, asyncio.ensure_future(arrived.wait())],
                return_when=asyncio.FIRST_COMPLETED,
            )
            if arrived.is_set():
                held = task
    assert busy.in_flight == 1
    counts = await tally(http, gw.url + "/", 40)
    assert counts["a"] == 0
    assert counts["b"] > 5
    assert counts["c"] > 5
    release.set()
    assert held is not None
    assert await held == "a"
    await settle(busy)
    assert (await tally(http, gw.url + "/", 60))["a"] > 5


async def test_ewma_prefers_the_faster_backend(kairos_gateway, backend_factory, http) -> None:
    fast = await backend_factory(echo_app("fast"))
    slow = await backend_factory(delayed_app("slow", 0.08))
    gw = await kairos_gateway(pool_config([(fast, "fast"), (slow, "slow")], "ewma"))
    counts = await tally(http, gw.url + "/", 50)
    assert counts["slow"] <= 6
    assert counts["fast"] >= 44


async def test_ewma_avoids_a_backend_failing_fast(kairos_gateway, backend_factory, http) -> None:
    failing = await backend_factory(delayed_app("failing", 0.0, status=500))
    steady = await backend_factory(delayed_app("steady", 0.01))
    gw = await kairos_gateway(
        pool_config(
            [(failing, "failing"), (steady, "steady")],
            {"name": "ewma", "config": {"failure_penalty": 0.5, "decay_time": 30}},
        )
    )
    counts = await tally(http, gw.url + "/", 40)
    assert counts["failing"] <= 3
