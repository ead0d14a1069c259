"""Gateway CPU µs per request with the `otel` plugin (off, sampled out, sampled), one run.

    python plugins/kairos-otel/bench/bench_gateway_cpu.py [--requests N] [--concurrency C]

Starts a backend and an OTLP/HTTP receiver in this process (their CPU is not counted) and, for
each case, one `kairos serve` process with the matching config from this folder (ports
replaced by free ones); sends N keep-alive GETs of `/api/item?id=1` and reads the gateway's
user+system CPU from /proc (all its threads, so the export thread is included); access
logging is off in every case. The gateway
is stopped after each case, which flushes its queue; the receiver's span count is checked.
One run on a small box: use the ratios, not the absolute figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web
from kairos_otel.testing import OtlpReceiver, start_receiver

from kairos_core.testing import GatewayProcess, start_backend

HERE = Path(__file__).parent
TICK = os.sysconf("SC_CLK_TCK")
BODY = b'{"id":12345,"name":"anchor-item","status":"active"}'
CASES = {
    "off": "proxy-otel-off.yaml",
    "unsampled": "proxy-otel-unsampled.yaml",
    "sampled": "proxy-otel-sampled.yaml",
}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by process `pid` (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def backend_app() -> web.Application:
    """A fixed small JSON body."""

    async def item(request: web.Request) -> web.Response:
        return web.Response(body=BODY, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", item)
    return app


def config_for(case: str, backend_url: str, receiver_url: str) -> dict[str, Any]:
    """The bench config for `case`, pointed at this run's backend and receiver."""
    config: dict[str, Any] = yaml.safe_load((HERE / CASES[case]).read_text())
    config["listeners"] = [{"host": "127.0.0.1", "port": 0}]
    # nobody reads the subprocess's stdout once it serves: keep access lines out of the pipe
    config["observability"] = {"access_log": {"enabled": False}}
    config["routes"][0]["upstream"] = {"backends": [{"url": backend_url}]}
    for plugin in config.get("plugins", []):
        plugin["config"]["endpoint"] = receiver_url
    return config


async def run_case(
    case: str, backend_url: str, receiver: OtlpReceiver, requests: int, concurrency: int
) -> tuple[float, float]:
    """(gateway CPU µs per request, requests per second) for one case."""
    before = len(receiver.spans)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "gateway.yaml"
        path.write_text(yaml.safe_dump(config_for(case, backend_url, receiver.url)))
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
                await asyncio.sleep(1.5)  # the warm-up's spans are exported before timing
                cpu, wall = cpu_seconds(gateway.proc.pid), time.perf_counter()
                await asyncio.gather(*(worker(requests // concurrency) for _ in range(concurrency)))
                await asyncio.sleep(1.5)  # include exporting this run's spans
                cpu = cpu_seconds(gateway.proc.pid) - cpu
                wall = time.perf_counter() - wall - 1.5
        finally:
            await gateway.stop()
    done = requests // concurrency * concurrency
    exported = len(receiver.spans) - before
    if case == "sampled":
        assert exported >= done, (exported, done)
    else:
        assert exported == 0, exported
    receiver.spans.clear()
    return cpu / done * 1e6, done / wall


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    async with start_backend(backend_app()) as backend, start_receiver() as receiver:
        results = {
            case: await run_case(case, backend.url, receiver, args.requests, args.concurrency)
            for case in CASES
        }
    base = results["off"][0]
    print("| otel | gateway CPU µs/request | ratio to off | req/s (one client process) |")
    print("|---|---:|---:|---:|")
    labels = {
        "off": "not configured",
        "unsampled": "configured, sample_ratio 0",
        "sampled": "configured, sample_ratio 1 (every span exported)",
    }
    for case, (micros, rate) in results.items():
        print(f"| {labels[case]} | {micros:.0f} | {micros / base:.2f} | {rate:,.0f} |")


if __name__ == "__main__":
    asyncio.run(main())
