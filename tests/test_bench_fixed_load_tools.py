"""The fixed-load stage's instruments: the open-loop generator against a real server, the stall probe's summary."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import cpu_stalls
import open_loop

from kairos_core.testing import free_port


@pytest.fixture
async def backend() -> AsyncIterator[str]:
    """An aiohttp server on loopback: 200 on /ok, 503 on /busy, 200 then close on /close."""

    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def busy(request: web.Request) -> web.Response:
        return web.Response(status=503)

    async def close(request: web.Request) -> web.Response:
        response = web.json_response({"ok": True})
        response.force_close()
        return response

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/busy", busy)
    app.router.add_get("/close", close)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_open_loop_offers_every_request_and_times_it(backend: str) -> None:
    summary = await open_loop.offer(f"{backend}/ok?x=1", rate=400, seconds=0.5, connections=4)
    assert summary["offered"] == 200
    assert summary["requests"] == 200
    assert summary["errors"] == 0
    assert 0 < summary["p50_ms"] <= summary["p99_ms"] <= summary["max_ms"]


async def test_open_loop_counts_non_200_answers_as_errors(backend: str) -> None:
    summary = await open_loop.offer(f"{backend}/busy", rate=200, seconds=0.25, connections=2)
    assert summary["requests"] == 50
    assert summary["errors"] == 50


async def test_open_loop_counts_requests_lost_with_their_connections(backend: str) -> None:
    summary = await open_loop.offer(
        f"{backend}/close", rate=200, seconds=0.25, connections=2, drain_seconds=0.5
    )
    assert summary["offered"] == 50
    assert 1 <= summary["requests"] < 50  # each connection answers once, then is gone
    assert summary["errors"] == summary["offered"] - summary["requests"]


def test_stall_summary_counts_episodes_of_consecutive_slow_windows() -> None:
    timings = [0.001] * 100 + [0.005] * 3 + [0.001] * 50 + [0.004] + [0.001] * 10
    text = cpu_stalls.summary(timings)
    assert "median window 1.00 ms" in text
    assert "2.4% of windows" in text  # 4 slow windows of 164
    assert "1 slow episodes of 10 ms or more, the longest 15 ms" in text
