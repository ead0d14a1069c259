"""Memory of `kairos serve` beside the minimal aiohttp proxy: idle PSS per worker, idle connections.

    python bench/memory.py                      # both measurements, markdown table
    python bench/memory.py --connections 2000   # fewer idle client connections (quick check)

1. Idle PSS per additional worker: each server runs with 2 and with 4 workers; after warm-up
   requests and a pause, the PSS (proportional set size: shared pages split between the processes
   that map them) of its whole process tree is summed; (PSS(4) - PSS(2)) / 2 is what one more
   worker costs.
2. Idle keep-alive client connections: one process; PSS before and after `--connections` clients
   each sent one request, read the answer and stayed connected (the delta, and per connection).

Both servers proxy to an aiohttp backend inside this script. PSS comes from
`/proc/PID/smaps_rollup` (Linux).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import ClientSession, web
from soak_probe import tree

from kairos_core.process import raise_open_file_limit
from kairos_core.testing import free_port, start_backend

HERE = Path(__file__).resolve().parent
ANCHOR = HERE / "anchors" / "minimal_aiohttp_proxy.py"  # a copy of the shared lab's
BODY = b'{"id": 1, "name": "widget"}'.ljust(213, b" ")
MIB = 1024 * 1024


def pss_bytes(root: int) -> int:
    """Summed PSS of `root`'s process tree."""
    total = 0
    for pid in tree(root):
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in rollup.splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1]) * 1024
    return total


def backend_app() -> web.Application:
    """A backend answering every path with a 213-byte JSON body."""

    async def answer(_request: web.Request) -> web.Response:
        return web.Response(body=BODY, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    return app


def kairos_config(directory: str, port: int, admin_port: int, backend: int) -> str:
    """A one-route config with room for the idle connections; returns its path."""
    path = Path(directory, "memory.yaml")
    path.write_text(
        f"""listeners: [{{host: 127.0.0.1, port: {port}}}]
admin: {{host: 127.0.0.1, port: {admin_port}}}
server: {{max_connections: 50000, keepalive_timeout: 600}}
routes:
  - {{name: api, prefix: /, upstream: {{backends: [{{url: "http://127.0.0.1:{backend}"}}]}}}}
"""
    )
    return str(path)


class Server:
    """One server under test: its command line per worker count, started and stopped."""

    def __init__(self, name: str, command: Callable[[int, int], list[str]]) -> None:
        self.name = name
        self.command = command
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    def launch(self, workers: int) -> subprocess.Popen[bytes]:
        """Start the server with `workers` processes in a session of its own."""
        self.port = free_port()
        self.process = subprocess.Popen(
            self.command(self.port, workers),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        return self.process

    async def start(self, workers: int) -> None:
        """Launch; wait until it answers and its process tree is steady."""
        process = self.launch(workers)
        seen: list[int] = []
        steady = 0
        async with ClientSession() as session:
            for _ in range(600):
                await asyncio.sleep(0.1)
                now = tree(process.pid)
                steady = steady + 1 if now == seen and len(now) >= workers else 0
                seen = now
                if steady < 20:  # the same processes for 2 s: every worker is up
                    continue
                try:
                    async with session.get(f"http://127.0.0.1:{self.port}/item") as response:
                        if response.status == 200:
                            return
                except OSError:
                    pass
        raise SystemExit(f"{self.name} with {workers} workers did not start")

    def stop(self) -> None:
        """SIGTERM the process group and wait."""
        if self.process is None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def pss(self) -> int:
        """PSS of the whole process tree now."""
        assert self.process is not None
        return pss_bytes(self.process.pid)


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One keep-alive GET on an open connection, answer read whole."""
    writer.write(b"GET /item HTTP/1.1\r\nHost: bench\r\n\r\n")
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    if not head.startswith(b"HTTP/1.1 200"):
        raise SystemExit(f"unexpected answer: {head[:40]!r}")


async def warm(port: int, connections: int = 64, requests: int = 20) -> None:
    """`connections` fresh connections (spread over workers by SO_REUSEPORT), a few GETs each."""

    async def one() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(requests):
            await exchange(reader, writer)
        writer.close()

    await asyncio.gather(*(one() for _ in range(connections)))


async def settle(server: Server) -> int:
    """Wait for PSS to stop moving (idle timers, freed buffers); return it."""
    last = server.pss()
    for _ in range(10):
        await asyncio.sleep(1.0)
        now = server.pss()
        if abs(now - last) < 256 * 1024:
            return now
        last = now
    return last


async def per_worker(server: Server) -> tuple[int, int, float]:
    """PSS with 2 and 4 workers, and the MiB one more worker costs."""
    measured = []
    for workers in (2, 4):
        await server.start(workers)
        try:
            await asyncio.sleep(1.0)
            await warm(server.port)
            measured.append(await settle(server))
        finally:
            server.stop()
    two, four = measured
    return two, four, (four - two) / 2 / MIB


async def idle_connections(server: Server, count: int, concurrency: int) -> tuple[int, int]:
    """PSS of one process before and after `count` idle keep-alive client connections."""
    await server.start(1)
    held: list[asyncio.StreamWriter] = []
    try:
        await warm(server.port)
        before = await settle(server)
        gate = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with gate:
                reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
                await exchange(reader, writer)
                held.append(writer)

        await asyncio.gather(*(one() for _ in range(count)))
        after = await settle(server)
        if server.process is None or server.process.poll() is not None:
            raise SystemExit(f"{server.name} died holding the connections")
        return before, after
    finally:
        for writer in held:
            writer.close()
        server.stop()


def servers(directory: str, backend: int) -> list[Server]:
    """Kairos (lean front, the default) and the minimal aiohttp + uvloop proxy."""
    kairos = shutil.which("kairos") or str(Path(sys.executable).with_name("kairos"))

    def kairos_command(port: int, workers: int) -> list[str]:
        config = kairos_config(directory, port, free_port(), backend)
        return [kairos, "serve", "--config", config, "--workers", str(workers)]

    def anchor_command(port: int, workers: int) -> list[str]:
        upstream = f"http://127.0.0.1:{backend}"
        options = ["--port", str(port), "--loop", "uvloop", "--upstream", upstream]
        return [sys.executable, str(ANCHOR), *options, "--workers", str(workers)]

    return [Server("kairos serve", kairos_command), Server("minimal aiohttp proxy", anchor_command)]


async def main_async(args: argparse.Namespace) -> str:
    """Run both measurements for every server; the markdown table."""
    rows = [
        "| server | PSS, 2 workers | PSS, 4 workers | per additional worker | "
        f"PSS, 1 process idle | with {args.connections:,} idle connections | added | per connection |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    async with start_backend(backend_app()) as backend:
        with tempfile.TemporaryDirectory() as directory:
            for server in servers(directory, backend.port):
                two, four, worker = await per_worker(server)
                before, after = await idle_connections(server, args.connections, args.concurrency)
                added = after - before
                rows.append(
                    f"| {server.name} | {two / MIB:.1f} MiB | {four / MIB:.1f} MiB | "
                    f"**{worker:.1f} MiB** | {before / MIB:.1f} MiB | {after / MIB:.1f} MiB | "
                    f"**{added / MIB:.1f} MiB** | {added / args.connections / 1024:.1f} KiB |"
                )
    return "\n".join(rows)


def main() -> int:
    """Parse arguments, measure, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16, help="connections opened at once")
    args = parser.parse_args()
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if limit < args.connections + 100:
        raise SystemExit(f"the open-file hard limit ({limit}) is below --connections + 100")
    started = time.monotonic()
    raise_open_file_limit()  # each idle connection holds a socket here too
    table = asyncio.run(main_async(args))
    print(
        f"Idle memory, PSS summed over each server's process tree ({time.monotonic() - started:.0f} s)\n"
    )
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
