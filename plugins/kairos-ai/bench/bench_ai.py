"""Benchmark: latency the `ai` balancer adds per request, beside a plain round-robin route.

Run with the plugin's venv:  python plugins/kairos-ai/bench/bench_ai.py [--requests 2000]
Starts, on loopback: two tiny backends, a fake OpenAI-compatible model answering after
`--model-delay` seconds (50 ms by default), and `kairos serve` (a real subprocess, one
worker) with three routes over the same backends:

- /rr      round_robin (the baseline)
- /cached  ai, cache key [method]: every request after the first is a cache hit
- /model   ai, cache off: every request waits for the model

One client sends requests one after another (latency, not throughput) and prints a
markdown table: mean / p50 / p99 per route and what each adds over /rr.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web
from fake_model import model_app

from kairos_core.testing import GatewayProcess, start_backend


def backend_app(name: str) -> web.Application:
    """Answers every request with a few bytes."""

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="ok", headers={"X-Backend": name})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    return app


def gateway_config(backends: list[str], model_url: str) -> dict[str, Any]:
    """Three routes over the same two backends: round robin, ai with cache, ai without."""
    servers = [{"name": f"b{i + 1}", "url": url} for i, url in enumerate(backends)]

    def ai(cache: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": "ai",
            "config": {
                "endpoint": {
                    "base_url": f"{model_url}/v1",
                    "model": "bench",
                    "mode": "json_schema",
                },
                "backends": {"b1": {"description": "general"}, "b2": {"description": "fast"}},
                "request": {"headers": ["content-type"]},
                "timeout": 1.0,
                "max_concurrent": 64,
                "cache": cache,
            },
        }

    return {
        "admin": {"enabled": False},
        # GatewayProcess stops reading stdout after the banner: a stdout access log would
        # fill the pipe and stall the gateway (and it is not what is being measured).
        "observability": {"access_log": {"enabled": False}},
        "upstreams": {
            "rr": {"backends": servers},
            "cached": {"backends": servers, "balancer": ai({"ttl": 3600, "key": ["method"]})},
            "model": {"backends": servers, "balancer": ai({"ttl": 0})},
        },
        "routes": [
            {"prefix": "/rr", "upstream": "rr"},
            {"prefix": "/cached", "upstream": "cached"},
            {"prefix": "/model", "upstream": "model"},
        ],
    }


async def measure(session: aiohttp.ClientSession, url: str, n: int) -> list[float]:
    """Seconds per request, `n` requests one after another (after a short warm-up)."""
    for _ in range(min(50, n)):
        async with session.get(url) as response:
            await response.read()
    times = []
    for _ in range(n):
        started = time.perf_counter()
        async with session.get(url) as response:
            await response.read()
            assert response.status == 200
        times.append(time.perf_counter() - started)
    return times


def row(name: str, times: list[float], base: float | None) -> str:
    """One markdown table row in milliseconds."""
    ordered = sorted(times)
    mean = statistics.fmean(times) * 1000
    p50 = ordered[len(ordered) // 2] * 1000
    p99 = ordered[int(len(ordered) * 0.99) - 1] * 1000
    added = "—" if base is None else f"+{mean - base:.3f}"
    return f"| {name} | {mean:.3f} | {p50:.3f} | {p99:.3f} | {added} |"


async def main(n: int, model_delay: float) -> None:
    calls: list[int] = []
    async with AsyncExitStack() as stack:
        backends = [
            await stack.enter_async_context(start_backend(backend_app(f"b{i}"))) for i in (1, 2)
        ]
        model = await stack.enter_async_context(start_backend(model_app(model_delay, calls)))
        config = gateway_config([b.url for b in backends], model.url)
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        path = folder / "bench-ai.yaml"
        path.write_text(yaml.safe_dump(config))
        gateway = GatewayProcess(["-c", str(path), "--port", "0"])
        await gateway.start()
        stack.push_async_callback(gateway.stop)
        session = await stack.enter_async_context(aiohttp.ClientSession())
        results = {}
        for route in ("rr", "cached", "model"):
            results[route] = await measure(session, f"{gateway.url}/{route}/x", n)
        base = statistics.fmean(results["rr"]) * 1000
        print(f"{n} sequential requests per route; model answers after {model_delay * 1000:.0f} ms")
        print()
        print("| route | mean ms | p50 ms | p99 ms | added (mean) ms |")
        print("|---|---:|---:|---:|---:|")
        print(row("round_robin (baseline)", results["rr"], None))
        print(row("ai, cache hit", results["cached"], base))
        print(row(f"ai, model answers in {model_delay * 1000:.0f} ms", results["model"], base))
        overhead = statistics.fmean(results["model"]) * 1000 - base - model_delay * 1000
        print()
        print(
            f"model calls: {len(calls)}; client + prompt overhead beyond the model's own "
            f"{model_delay * 1000:.0f} ms: {overhead:.3f} ms per call"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per route")
    parser.add_argument("--model-delay", type=float, default=0.05, help="model answer time (s)")
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.model_delay))
