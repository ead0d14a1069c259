#!/usr/bin/env python3
"""CPU µs per proxied request: Kairos (lean client), Kairos (aiohttp client), minimal aiohttp.

Every proxy forwards `GET /api/item?id=1` to an HTTP backend (by default the nginx of the
shared perf lab on 127.0.0.1:27080). Runs are interleaved and repeated; CPU time is the
proxy process's utime+stime from /proc/<pid>/stat over each wrk run, divided by the requests
wrk completed. On a shared machine only the medians and the ratios mean anything.

    python bench/upstream_client_cpu.py --reps 3 --duration 8
    python bench/upstream_client_cpu.py --minimal /work/shared/bench/minimal_aiohttp_proxy.py
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CLK = os.sysconf("SC_CLK_TCK")
PATH = "/api/item?id=1"


def cpu_seconds(pid: int) -> float:
    """utime+stime of a process (and its reaped children), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return sum(int(x) for x in fields[11:15]) / CLK


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(port: int, deadline: float = 15.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{PATH}", timeout=1) as r:
                r.read()
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing answered on port {port}")


def wrk(port: int, conns: int, duration: str, cpu: str) -> tuple[int, float]:
    """Run wrk; (requests completed, req/s)."""
    out = subprocess.run(
        [
            "taskset",
            "-c",
            cpu,
            "wrk",
            "-t1",
            f"-c{conns}",
            f"-d{duration}",
            "--timeout",
            "5s",
            f"http://127.0.0.1:{port}{PATH}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"port {port}: {errors.group(1)} error responses")
    return requests, rate


def main() -> None:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", default="http://127.0.0.1:27080")
    parser.add_argument("--minimal", default="/work/shared/bench/minimal_aiohttp_proxy.py")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--duration", default="8s")
    parser.add_argument("--conns", type=int, default=50)
    parser.add_argument("--proxy-cpu", default="0")
    parser.add_argument("--wrk-cpu", default="1")
    args = parser.parse_args()

    kairos = str(Path(sys.executable).with_name("kairos"))
    tmp = Path(tempfile.mkdtemp(prefix="kairos-bench-"))
    targets: dict[str, tuple[int, list[str]]] = {}
    for client in ("lean", "aiohttp"):
        port = free_port()
        config = tmp / f"{client}.yaml"
        config.write_text(
            f"listeners: [{{host: 127.0.0.1, port: {port}}}]\nadmin: {{enabled: false}}\n"
            f"routes:\n  - prefix: /\n    upstream: {{client: {client}, "
            f"backends: [{{url: '{args.upstream}'}}]}}\n"
        )
        targets[f"kairos ({client} client)"] = (port, [kairos, "serve", "--config", str(config)])
    if Path(args.minimal).is_file():
        port = free_port()
        targets["minimal aiohttp + uvloop"] = (
            port,
            [
                sys.executable,
                args.minimal,
                "--port",
                str(port),
                "--upstream",
                args.upstream,
                "--loop",
                "uvloop",
            ],
        )
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, (port, command) in targets.items():
            procs[name] = subprocess.Popen(
                ["taskset", "-c", args.proxy_cpu, *command],
                stdout=subprocess.DEVNULL,
                stderr=open(tmp / f"{port}.log", "wb"),  # noqa: SIM115
            )
            wait_ready(port)
            wrk(port, args.conns, "2s", args.wrk_cpu)  # warm-up, discarded
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in targets}
        for rep in range(args.reps):
            for name, (port, _) in targets.items():
                pid = procs[name].pid
                before = cpu_seconds(pid)
                requests, rate = wrk(port, args.conns, args.duration, args.wrk_cpu)
                used = cpu_seconds(pid) - before
                samples[name].append((used * 1e6 / requests, rate))
                print(f"rep {rep + 1} {name}: {used * 1e6 / requests:.1f} µs/req, {rate:.0f} req/s")
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGINT)
        for proc in procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    anchor = "minimal aiohttp + uvloop"
    base = statistics.median(s[0] for s in samples[anchor]) if anchor in samples else None
    print(f"\nwrk -t1 -c{args.conns} -d{args.duration}, {args.reps} interleaved reps, {here.name}/")
    print("\n| target | CPU µs/req (median, min-max) | x minimal aiohttp | req/s (median) |")
    print("|---|---:|---:|---:|")
    for name, runs in samples.items():
        cpu = [r[0] for r in runs]
        median = statistics.median(cpu)
        ratio = f"{median / base:.2f}" if base else "n/a"
        rate = statistics.median(r[1] for r in runs)
        print(f"| {name} | {median:.0f} ({min(cpu):.0f}-{max(cpu):.0f}) | {ratio} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
