"""WebSocket messages relayed per second: through `kairos serve` beside direct to the backend.

    python bench/ws_relay.py [--connections 50] [--seconds 10] [--size 32]

The backend is an aiohttp echo server in its own process, the gateway `kairos serve` in
another, the load generator (50 connections, each sending its next message when the echo of
the last arrives) in this one. Only the ratio means anything.

Two placements (run.PLACEMENTS), each direct then through: pinned as in the proxy comparison
(the gateway alone on CPU 0, the backend and the load generator on CPU 1), and unpinned (the three processes
share both CPUs, so the gateway's CPU per message comes out of what direct had to itself).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from run import Placement, placements, started

from kairos_core.testing import free_port, wait_for_port

BACKEND = """
import sys
from aiohttp import web

async def echo(request):
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for message in ws:
        await ws.send_str(message.data)
    return ws

app = web.Application()
app.router.add_get("/ws", echo)
try:
    import uvloop
    uvloop.install()
except ImportError:
    pass
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


async def relay(url: str, connections: int, seconds: float, size: int) -> float:
    """Messages per second echoed over `connections` sockets for `seconds`."""
    payload = "x" * size
    counts = [0] * connections
    stop = time.monotonic() + seconds

    async def one(index: int, session: aiohttp.ClientSession) -> None:
        async with session.ws_connect(url) as ws:
            while time.monotonic() < stop:
                await ws.send_str(payload)
                await ws.receive()
                counts[index] += 1

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.monotonic()
        await asyncio.gather(*(one(i, session) for i in range(connections)))
        return sum(counts) / (time.monotonic() - started)


def measure(
    kairos: str,
    config: Path,
    ports: tuple[int, int],
    args: argparse.Namespace,
    placement: Placement,
) -> tuple[float, float]:
    """Messages per second direct and through the gateway, in one placement."""
    backend_port, gateway_port = ports
    _, gateway_cpus, load_cpus = placement
    load = (args.connections, args.seconds, args.size)
    own_cpus = os.sched_getaffinity(0)
    with (
        started([sys.executable, "-c", BACKEND, str(backend_port)], load_cpus),
        started([kairos, "serve", "--config", str(config)], gateway_cpus),
    ):
        asyncio.run(wait_for_port(backend_port))
        asyncio.run(wait_for_port(gateway_port))
        os.sched_setaffinity(0, load_cpus or own_cpus)
        try:
            rates = [asyncio.run(relay(f"ws://127.0.0.1:{port}/ws", *load)) for port in ports]
        finally:
            os.sched_setaffinity(0, own_cpus)
    return rates[0], rates[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--size", type=int, default=32)
    args = parser.parse_args()
    kairos = shutil.which("kairos", path=str(Path(sys.executable).parent)) or "kairos"
    ports = backend_port, gateway_port = free_port(), free_port()
    config = (
        f"listeners: [{{host: 127.0.0.1, port: {gateway_port}}}]\n"
        "admin: {enabled: false}\n"
        "observability: {metrics: {enabled: false}, access_log: {enabled: false}}\n"
        "routes:\n"
        f"  - {{name: ws, prefix: /, upstream: {{backends: [{{url: 'http://127.0.0.1:{backend_port}'}}]}}}}\n"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        config_path = Path(tmp) / "ws.yaml"
        config_path.write_text(config)
        for placement in placements():
            direct, through = measure(kairos, config_path, ports, args, placement)
            rows.append((placement[0], direct, through))
    print("| placement | direct to the backend (messages/s) | through kairos | through ÷ direct |")
    print("|---|---:|---:|---:|")
    for name, direct, through in rows:
        print(f"| {name} | {direct:,.0f} | {through:,.0f} | {through / direct:.2f} |")
    print(f"\nthrough ÷ direct, {rows[0][0]}: {rows[0][2] / rows[0][1]:.2f} (target >= 0.50)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
