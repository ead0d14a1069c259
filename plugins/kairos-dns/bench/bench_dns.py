"""Queries per second: direct to an upstream, through `kairos serve` uncached, and cached.

    python plugins/kairos-dns/bench/bench_dns.py [--seconds 10] [--workers 1]

The upstream is the tests' dnspython authoritative server (its own process, uvloop). Load
comes from dnsperf (Debian package `dnsperf`) when installed, else from a Python load script
with many concurrent UDP queries. Prints a markdown table with queries per second and the
server's CPU time per query (steadier than queries/s on a shared machine).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent / "tests"
NAMES = [("www", "A"), ("www", "AAAA"), ("mail", "A"), ("", "MX"), ("txt", "TXT"), ("ns1", "A")]
UPSTREAM = """
import asyncio, sys
sys.path.insert(0, {tests!r})
import uvloop
from kairos_dns_testkit import start_zone_server

async def main():
    await start_zone_server(port={port})
    print("ready", flush=True)
    await asyncio.Event().wait()

uvloop.run(main())
"""

FAST_UPSTREAM = """
import asyncio, sys
sys.path.insert(0, {tests!r})
import uvloop
import dns.message
from kairos_dns_testkit import start_zone_server

async def main():
    zone = await start_zone_server()  # answers computed once, then replayed from bytes
    canned = {{}}

    class Fast(asyncio.DatagramProtocol):
        def connection_made(self, transport):
            self.transport = transport

        def datagram_received(self, data, addr):
            answer = canned.get(data[2:])
            if answer is None:
                query = dns.message.from_wire(data)
                answer = canned[data[2:]] = zone.to_wire(zone.answer(query, "udp"), 512)
            self.transport.sendto(data[:2] + answer[2:], addr)

    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(Fast, local_addr=("127.0.0.1", {port}))
    print("ready", flush=True)
    await asyncio.Event().wait()

uvloop.run(main())
"""


def free_port() -> int:
    """A port free for both UDP and TCP."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port


def start_upstream(port: int, fast: bool) -> subprocess.Popen[str]:
    """The authoritative server in its own process (`fast`: canned answers, no parsing)."""
    code = (FAST_UPSTREAM if fast else UPSTREAM).format(tests=str(TESTS), port=port)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def start_gateway(
    upstream: int, port: int, cached: bool, workers: int, workdir: Path
) -> subprocess.Popen[str]:
    """`kairos serve` with a DNS listener in front of the upstream."""
    config = {
        "listeners": [
            {"host": "127.0.0.1", "port": free_port()},
            {
                "name": "dns",
                "protocol": "dns",
                "host": "127.0.0.1",
                "port": port,
                "config": {"zones": {".": "resolvers"}, "cache": {"enabled": cached}},
            },
        ],
        "admin": {"enabled": False},
        "upstreams": {"resolvers": {"backends": [{"url": f"dns://127.0.0.1:{upstream}"}]}},
    }
    path = workdir / f"gateway-{port}.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kairos_cli",
            "serve",
            "--config",
            str(path),
            "--workers",
            str(workers),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("Press Ctrl+C"):
            break
    else:
        raise RuntimeError("kairos serve did not start")
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM and wait."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process `pid` and its descendants (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    usage: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        usage[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
    family, added = {pid}, True
    while added:
        more = {child for child, parent in parents.items() if parent in family} - family
        family |= more
        added = bool(more)
    return sum(usage.get(member, 0.0) for member in family)


def dnsperf(port: int, seconds: float, workdir: Path) -> tuple[float, float]:
    """(queries per second, fraction lost or not NOERROR) measured by dnsperf."""
    data = workdir / "queries.txt"
    data.write_text("".join(f"{f'{n}.' if n else ''}example.test {t}\n" for n, t in NAMES))
    out = subprocess.run(
        [
            "dnsperf",
            "-s",
            "127.0.0.1",
            "-p",
            str(port),
            "-d",
            str(data),
            "-l",
            str(seconds),
            "-c",
            "8",
            "-q",
            "200",
            "-t",
            "2",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    qps = float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lost = float(re.search(r"Queries lost:\s+\d+ \(([\d.]+)%\)", out).group(1)) / 100  # type: ignore[union-attr]
    noerror = re.search(r"Response codes:.*?NOERROR \d+ \(([\d.]+)%\)", out)
    failed = 1 - (float(noerror.group(1)) / 100 if noerror else 0.0)
    return qps, lost + failed * (1 - lost)


async def python_load(port: int, seconds: float, concurrency: int = 200) -> tuple[float, float]:
    """(queries per second, fraction lost) with `concurrency` queries always outstanding."""
    import dns.message

    wires = [
        dns.message.make_query(f"{n}.example.test." if n else "example.test.", t).to_wire()
        for n, t in NAMES
    ]
    loop = asyncio.get_running_loop()
    answered = sent = 0
    waiting: dict[int, asyncio.Future[None]] = {}

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            future = waiting.pop(int.from_bytes(data[:2], "big"), None)
            if future is not None and not future.done():
                future.set_result(None)

    transport, _ = await loop.create_datagram_endpoint(Client, remote_addr=("127.0.0.1", port))
    deadline = time.perf_counter() + seconds

    async def worker(slot: int) -> None:
        nonlocal answered, sent
        query_id = slot
        while time.perf_counter() < deadline:
            query_id = (query_id + concurrency) % 65536
            future = loop.create_future()
            waiting[query_id] = future
            wire = wires[query_id % len(wires)]
            transport.sendto(query_id.to_bytes(2, "big") + wire[2:])
            sent += 1
            try:
                await asyncio.wait_for(future, 1.0)
                answered += 1
            except TimeoutError:
                waiting.pop(query_id, None)

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    transport.close()
    return answered / (time.perf_counter() - started), 1 - answered / max(sent, 1)


def measure(
    port: int, seconds: float, workdir: Path, server: int | None = None
) -> tuple[float, float, float]:
    """Load the server on `port` for `seconds`: (queries/s, lost, server CPU s per query)."""
    before = cpu_seconds(server) if server else 0.0
    started = time.perf_counter()
    if shutil.which("dnsperf"):
        qps, lost = dnsperf(port, seconds, workdir)
    else:
        qps, lost = asyncio.run(python_load(port, seconds))
    elapsed = time.perf_counter() - started
    used = cpu_seconds(server) - before if server else 0.0
    return qps, lost, used / max(qps * elapsed, 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--upstream",
        choices=["dnspython", "canned"],
        default="dnspython",
        help="dnspython: parses and builds every answer; canned: replays stored answer bytes",
    )
    args = parser.parse_args()
    tool = "dnsperf" if shutil.which("dnsperf") else "python load script"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        upstream_port = free_port()
        upstream = start_upstream(upstream_port, args.upstream == "canned")
        try:
            measure(upstream_port, 1.0, workdir)  # warm-up
            rows.append(
                (
                    "direct to the upstream",
                    *measure(upstream_port, args.seconds, workdir, upstream.pid),
                )
            )
            for label, cached in (
                ("through kairos, uncached", False),
                ("through kairos, cached", True),
            ):
                port = free_port()
                gateway = start_gateway(upstream_port, port, cached, args.workers, workdir)
                try:
                    measure(port, 1.0, workdir)
                    rows.append((label, *measure(port, args.seconds, workdir, gateway.pid)))
                finally:
                    stop(gateway)
        finally:
            stop(upstream)
    direct = rows[0][1]
    print(
        f"\nDNS over UDP, {tool}, {args.upstream} upstream, {args.seconds:g} s per run, "
        f"gateway workers: {args.workers}, {os.cpu_count()} CPUs\n"
    )
    print("| path | queries/s | vs direct | lost or not NOERROR | server CPU per query |")
    print("|---|---:|---:|---:|---:|")
    for label, qps, lost, cpu in rows:
        print(f"| {label} | {qps:,.0f} | {qps / direct:.0%} | {lost:.2%} | {cpu * 1e6:.1f} µs |")
    print(
        "\nserver CPU: the upstream process (direct) or the gateway's processes; it does not "
        "depend on what else the machine runs, unlike queries/s."
    )


if __name__ == "__main__":
    main()
