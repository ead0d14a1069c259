"""Gateway CPU µs per request: cache hits (memory, Redis) beside proxying the same route uncached.

    python plugins/kairos-cache/bench/bench_gateway_cpu.py [--requests N] [--concurrency C]

Starts a backend in this process (its CPU is not counted) and, for each case, one
`kairos serve` process with the matching config from this folder; sends N keep-alive GETs
of `/api/item?id=1` and reads the gateway's own user+system CPU from /proc. One run, one
small box: use the ratios, not the absolute figures. The proxy-level benchmark (wrk, the
anchors) is run centrally with the configs in this folder.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis
import yaml
from aiohttp import web

from kairos_core.testing import GatewayProcess, redis_available, start_backend

HERE = Path(__file__).parent
BODY = (HERE / "anchor_body.json").read_bytes().strip()  # the proxy anchors' 213 bytes
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by process `pid`."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def backend_app() -> web.Application:
    """The anchors' backend: a fixed JSON body and no caching headers."""

    async def item(request: web.Request) -> web.Response:
        return web.Response(body=BODY, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", item)
    return app


def config_for(case: str, backend_url: str, namespace: str) -> dict[str, object]:
    """The bench config for `case`, pointed at this run's backend."""
    name = {
        "uncached": "proxy-uncached.yaml",
        "memory": "proxy-cached.yaml",
        "redis": "proxy-cached-redis.yaml",
        "redis-local": "proxy-cached-redis-local.yaml",
    }[case]
    config = yaml.safe_load((HERE / name).read_text())
    config["listeners"] = [{"host": "127.0.0.1", "port": 0}]
    config["admin"] = {"enabled": False}
    for route in config["routes"]:
        route["upstream"] = {"backends": [{"url": backend_url}]}
        for plugin in route.get("plugins", []):
            if "redis" in plugin.get("config", {}):
                plugin["config"]["redis"]["namespace"] = namespace
    return config


async def forget_namespace(namespace: str) -> None:
    """Delete what a run wrote to the shared Redis."""
    client = aioredis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        keys = [key async for key in client.scan_iter(match=namespace + "*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def run_case(
    case: str, backend_url: str, requests: int, concurrency: int
) -> tuple[float, float]:
    """(gateway CPU µs per request, requests per second) for one case."""
    namespace = f"kairos-bench:{uuid.uuid4().hex}:"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "gateway.yaml"
        path.write_text(yaml.safe_dump(config_for(case, backend_url, namespace)))
        gateway = GatewayProcess(["--config", str(path)])
        await gateway.start()
        assert gateway.proc is not None
        try:
            connector = aiohttp.TCPConnector(limit=concurrency)
            async with aiohttp.ClientSession(connector=connector) as client:
                url = gateway.url + "/api/item?id=1"

                async def worker(count: int) -> None:
                    for _ in range(count):
                        async with client.get(url) as response:
                            await response.read()

                await asyncio.gather(*(worker(200 // concurrency + 1) for _ in range(concurrency)))
                async with client.get(url) as response:
                    expected = "MISS" if case == "uncached" else "HIT"
                    assert response.headers.get("X-Cache", "MISS") == expected, response.headers
                cpu, wall = cpu_seconds(gateway.proc.pid), time.perf_counter()
                await asyncio.gather(*(worker(requests // concurrency) for _ in range(concurrency)))
                cpu, wall = cpu_seconds(gateway.proc.pid) - cpu, time.perf_counter() - wall
        finally:
            await gateway.stop()
            if case.startswith("redis"):
                await forget_namespace(namespace)
    done = requests // concurrency * concurrency
    return cpu / done * 1e6, done / wall


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    cases = ["uncached", "memory"] + (["redis", "redis-local"] if redis_available() else [])
    async with start_backend(backend_app()) as backend:
        results = {
            c: await run_case(c, backend.url, args.requests, args.concurrency) for c in cases
        }
    base = results["uncached"][0]
    print("| route | gateway CPU µs/request | ratio to uncached | req/s (one client process) |")
    print("|---|---:|---:|---:|")
    labels = {
        "uncached": "proxied, no cache",
        "memory": "cache hit, memory store",
        "redis": "cache hit, Redis store (loopback)",
        "redis-local": "cache hit, Redis store + 1 s local tier",
    }
    for case, (micros, rate) in results.items():
        print(f"| {labels[case]} | {micros:.0f} | {micros / base:.2f} | {rate:,.0f} |")


if __name__ == "__main__":
    asyncio.run(main())
