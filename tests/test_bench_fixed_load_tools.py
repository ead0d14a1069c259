"""The fixed-load stage's instruments: the open-loop generator against a real server, the stall probe's summary, the table's medians."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import cpu_stalls
import open_loop

from kairos_core.testing import free_port

_spec = importlib.util.spec_from_file_location(
    "bench_run", Path(cpu_stalls.__file__).with_name("run.py")
)
assert _spec is not None and _spec.loader is not None
bench_run = importlib.util.module_from_spec(_spec)  # not `run`: fuzz/ has a run.py too
_spec.loader.exec_module(bench_run)


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


def test_latency_rows_take_medians_of_what_each_round_added() -> None:
    rounds = [
        [("direct", 3.0, 0.2, 1.0), ("nginx-1w", 4.0, 1.2, 3.0), ("kairos-bare", 6.0, 2.2, 5.0)],
        [("direct", 2.0, 0.1, 1.0), ("nginx-1w", 5.0, 3.1, 4.0), ("kairos-bare", 9.0, 3.6, 9.0)],
        [("direct", 2.5, 0.3, 1.0), ("nginx-1w", 3.5, 0.8, 2.0), ("kairos-bare", 8.5, 4.3, 7.0)],
    ]
    direct, nginx, kairos = bench_run.latency_rows("pinned", rounds)
    assert direct == "| pinned | direct (its own p99) | 2.50 | 0.20 | 1.00 | |"
    # open loop added: nginx 1.0 / 3.0 / 0.5, kairos 2.0 / 3.5 / 4.0; kairos - nginx: 1.0 / 0.5 / 3.5
    assert nginx == "| pinned | nginx-1w | 1.00 | 1.00 (0.50-3.00) | 3.00 | 0.00 |"
    assert kairos == "| pinned | kairos-bare | 6.00 | 3.50 (2.00-4.00) | 7.00 | 1.00 |"
