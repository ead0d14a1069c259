"""Soak: mixed load through `kairos serve` for 10 minutes, a reload every 15 s, backends flapping.

    python bench/soak.py [--duration 600] [--reload-every 15] [--workers 1] [--clients 8]
    nox -s soak -- --duration 600 --workers 2

Five aiohttp backends (pools `api`: api-a/b/c and `bulk`: bulk-a/b, each its own process) sit
behind one `kairos serve` (jwt, apikey, rate-limit, transform and cache on five routes, active
and passive health checks, circuit breakers, retries). `--clients` clients loop over: GET
(generation header set by transform), POST echo (random body up to 48 KiB, checked byte for
byte), 1 MiB streamed bodies (checked), cached GETs (20 keys), WebSocket sessions (20 echoed
messages) and requests with a bad JWT or API key, which must get 401.

Every `--reload-every` seconds the config file is rewritten with the next generation number
and reloaded, alternately with `POST /config/reload` (must answer ok) and SIGHUP (the success
counter must rise, the failure counter must not). Every `--flap-every` seconds one backend is
stopped, in turn gracefully and abruptly, and started again on the same port 5 s later; the
next flap waits until the gateway reports every backend healthy, so each pool always keeps at
least one healthy backend. Graceful is how backends are taken down in production: drain (its
/health answers 503 for 3 s, so the gateway's probe takes it out of rotation), then SIGTERM
(open WebSockets get 1001, running requests finish). Abrupt is SIGKILL, nothing drained.

Expected failures, and only these (anything else is unexpected and must be 0):

- a 401 for a bad credential (counted as "refused", it is the right answer);
- a streamed body cut after its head arrived, when the backend that sent the head was
  SIGKILLed while it streamed (the gateway cannot resend half a response);
- a 502 for a POST in flight on a backend that was SIGKILLed (the error names it): POST is
  not idempotent, so the gateway rightly does not resend it;
- a WebSocket session that ended early because its backend (named in its hello) stopped:
  closed with 1001 after SIGTERM, or dropped after SIGKILL (a WebSocket is never moved).

Without the drain, a graceful stop races the gateway: a backend closing its idle keep-alive
connections can reset one on which the gateway has just sent a POST, and RFC 9112 §9.3.1
forbids resending a non-idempotent request then (the gateway answers 502 upstream_reset).
That is why graceful stops drain first, and why such a 502 after a drain is unexpected.

A failure "on a stopped backend" must happen between the stop and 2 s after the restart.
GETs and the cached route must never fail: they are retried on another backend.

Growth is measured at two quiet checkpoints, after `--warmup` seconds and at the end: load,
flaps and reloads pause, client connections close, every backend is up, and the script waits
until the gateway has no request in flight, no client connection and (after the upstream
keep-alive of 3 s) no idle upstream connection; the median of 3 samples counts. Limits:

- RSS of each of the gateway's processes: + max(10 %, 8 MiB). Allocator arenas keep some high-water
  memory after bursts (1 MiB streams, WebSocket buffers), and the cache holds 20 entries; a
  leak of 1 KiB per request (~100k requests) or 200 KiB per reload would exceed it;
- open fds: +5. Quiet, the gateway holds only its listeners, event loop and pipes; one socket
  leaked per flap or reload (~40 each in 10 minutes) would exceed it;
- asyncio tasks (`kairos_event_loop_tasks`): +10. Quiet, only health checks, sweepers and
  flushers run; one task leaked per reload or WebSocket would exceed it.

It also fails on a failed reload, a gateway (worker) process that died or was replaced, or a
run without any flap. The report goes to stdout and bench/results/soak-<time>.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import itertools
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from soak_config import API_KEY, UPSTREAM_KEEPALIVE, render, token
from soak_load import Client, Ledger, Stop
from soak_probe import (
    Sample,
    counter,
    median,
    metrics,
    sample,
    slope_mib_per_min,
    worst_rss_growth,
)
from soak_report import Verdict, report

from kairos_core.testing import free_port, wait_for_port

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
BACKENDS = ("api-a", "api-b", "api-c", "bulk-a", "bulk-b")
DOWN_FOR = 5.0
DRAIN = 3.0
"""Seconds a backend fails its health check before SIGTERM: the probe (every 1 s) sees it."""


def spawn(command: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start a child process (returns at once; nothing to await)."""
    return subprocess.Popen(command, **kwargs)


class Backend:
    """One backend process on a fixed port, stopped and started again by the flapper."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        """Spawn it and wait until it accepts connections."""
        script = str(HERE / "soak_backend.py")
        self.process = spawn([sys.executable, script, str(self.port), self.name])
        await wait_for_port(self.port)

    async def stop(self, mode: str) -> None:
        """Drain then SIGTERM (graceful, waited for), or SIGKILL (abrupt)."""
        assert self.process is not None
        if mode == "term":
            self.process.send_signal(signal.SIGUSR1)  # /health turns 503
            await asyncio.sleep(DRAIN)
        self.process.send_signal(signal.SIGKILL if mode == "kill" else signal.SIGTERM)
        await asyncio.to_thread(self.process.wait, 15)


class Soak:
    """The gateway, its backends, and the activities around them."""

    def __init__(self, args: argparse.Namespace, workdir: Path, log: Path) -> None:
        self.args = args
        self.backends = {name: Backend(name) for name in BACKENDS}
        self.port, self.admin_port = free_port(), free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.admin = f"http://127.0.0.1:{self.admin_port}"
        self.config = workdir / "soak.yaml"
        self.log = log
        self.generation = 0
        self.gateway: subprocess.Popen[bytes] | None = None
        self.ledger = Ledger()
        self.running = asyncio.Event()
        self.flapping = asyncio.Lock()
        self.reloads: list[tuple[str, bool, str]] = []
        self.samples: list[Sample] = []
        self.token = ""
        self.pid = 0
        self.trend = 0.0
        self.started = 0.0
        self.flaps = itertools.count()

    def write_config(self) -> None:
        """Write the current generation's configuration."""
        ports = {name: b.port for name, b in self.backends.items()}
        text = render(self.port, self.admin_port, ports, self.generation)
        tmp = self.config.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(self.config)

    async def start(self) -> None:
        """Backends, then the gateway; return once it is ready."""
        await asyncio.gather(*(b.start() for b in self.backends.values()))
        self.write_config()
        kairos = shutil.which("kairos", path=str(Path(sys.executable).parent)) or "kairos"
        command = [kairos, "serve", "--config", str(self.config)]
        command += ["--workers", str(self.args.workers)]
        with self.log.open("wb") as log:
            self.gateway = spawn(command, stdout=subprocess.DEVNULL, stderr=log)
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                try:
                    async with session.get(self.admin + "/ready") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                if self.gateway.poll() is not None:
                    break
                await asyncio.sleep(0.1)
        raise RuntimeError(f"the gateway did not become ready; see {self.log}")

    async def stop(self) -> None:
        """Stop the gateway and every backend (waited for)."""
        processes = [self.gateway] + [b.process for b in self.backends.values()]
        for process in processes:
            if process is not None and process.poll() is None:
                process.terminate()
        for process in processes:
            if process is not None:
                try:
                    await asyncio.to_thread(process.wait, 40)
                except subprocess.TimeoutExpired:
                    process.kill()

    async def load(self, session: aiohttp.ClientSession) -> None:
        """Run `--clients` load clients until `running` is cleared."""
        clients = [
            Client(self.base, self.token, API_KEY, self.ledger, seed)
            for seed in range(self.args.clients)
        ]
        await asyncio.gather(*(c.run(session, self.running) for c in clients))

    async def reload(self, session: aiohttp.ClientSession) -> None:
        """Rewrite the config with the next generation; reload via the admin API or SIGHUP."""
        self.generation += 1
        self.write_config()
        if self.generation % 2:
            async with session.post(self.admin + "/config/reload") as response:
                body = await response.text()
                ok = response.status == 200 and json.loads(body).get("ok") is True
                self.reloads.append(("admin", ok, body))
            return
        before = await metrics(session, self.admin)
        good = 'kairos_config_reloads_total{result="success"}'
        bad = 'kairos_config_reloads_total{result="failure"}'
        assert self.gateway is not None
        self.gateway.send_signal(signal.SIGHUP)
        for _ in range(100):
            await asyncio.sleep(0.1)
            after = await metrics(session, self.admin)
            if counter(after, good) >= counter(before, good) + self.args.workers:
                break
        ok = counter(after, good) > counter(before, good) and counter(after, bad) == counter(
            before, bad
        )
        self.reloads.append(("SIGHUP", ok, "" if ok else "success counter did not rise"))

    async def all_healthy(self, session: aiohttp.ClientSession, timeout: float = 30.0) -> bool:
        """Wait until the gateway reports every backend healthy and available."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            async with session.get(self.admin + "/upstreams") as response:
                pools = await response.json()
            states = [b["healthy"] and b["available"] for p in pools for b in p["backends"]]
            if len(states) == len(BACKENDS) and all(states):
                return True
            await asyncio.sleep(0.2)
        return False

    async def flap(self, session: aiohttp.ClientSession, number: int) -> None:
        """Stop one backend (SIGTERM or SIGKILL), start it again, wait until all are healthy."""
        backend = self.backends[BACKENDS[number % len(BACKENDS)]]
        mode = "term" if number % 2 == 0 else "kill"
        async with self.flapping:
            stop = Stop(backend.name, mode, time.monotonic())
            self.ledger.stops.append(stop)
            await backend.stop(mode)
            await asyncio.sleep(DOWN_FOR)
            await backend.start()
            stop.ended = time.monotonic()
            if not await self.all_healthy(session):
                raise RuntimeError(f"{backend.name} did not become healthy again")

    async def activity(self, session: aiohttp.ClientSession, until: float) -> None:
        """Reloads and flaps on their schedules, plus samples, until `until` (monotonic)."""
        next_reload = time.monotonic() + self.args.reload_every
        next_flap = time.monotonic() + self.args.flap_every / 2
        flap_task: asyncio.Task[None] | None = None
        while time.monotonic() < until:
            now = time.monotonic()
            if now >= next_reload:
                await self.reload(session)
                next_reload += self.args.reload_every
            if now >= next_flap and (flap_task is None or flap_task.done()):
                if flap_task is not None:
                    flap_task.result()
                flap_task = asyncio.create_task(self.flap(session, next(self.flaps)))
                next_flap = now + self.args.flap_every
            self.samples.append(await sample(session, self.admin, self.pid))
            await asyncio.sleep(min(self.args.sample_every, max(0.0, until - time.monotonic())))
        if flap_task is not None:
            await flap_task

    async def quiet(self, session: aiohttp.ClientSession) -> Sample:
        """Measure at rest: no load, all backends up, no client or idle upstream connection."""
        async with self.flapping:
            assert await self.all_healthy(session)
            for _ in range(200):
                current = await sample(session, self.admin, self.pid)
                if current.in_flight == 0 and current.connections == 0:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(UPSTREAM_KEEPALIVE + 1.5)
            readings = []
            for _ in range(3):
                readings.append(await sample(session, self.admin, self.pid))
                await asyncio.sleep(0.5)
        return median(readings)

    async def phase(self, seconds: float, admin: aiohttp.ClientSession) -> None:
        """Load plus reloads and flaps for `seconds`; the load's connections close at the end."""
        connector = aiohttp.TCPConnector(limit=0, force_close=False)
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            self.running.set()
            load = asyncio.create_task(self.load(session))
            try:
                await self.activity(admin, time.monotonic() + seconds)
            finally:
                self.running.clear()
                await load

    async def run(self) -> tuple[Sample, Sample, float, float]:
        """Warm up, checkpoint, soak, checkpoint; returns both checkpoints and the elapsed times."""
        self.token = token()
        assert self.gateway is not None
        self.pid = self.gateway.pid
        warmup = min(self.args.warmup, self.args.duration / 2)
        started = self.started = time.monotonic()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as admin:
            await self.phase(warmup, admin)
            first = await self.quiet(admin)
            self.samples.append(first)
            mark = len(self.samples)
            await self.phase(self.args.duration - warmup, admin)
            last = await self.quiet(admin)
            self.samples.append(last)
        self.trend = slope_mib_per_min(self.samples[mark:-1])  # under load only
        return first, last, warmup, time.monotonic() - started


def verdict(soak: Soak, first: Sample, last: Sample) -> Verdict:
    """Check every limit of the docstring."""
    pid, growth, limit = worst_rss_growth(first, last)
    flaps = len(soak.ledger.stops)
    checks = [
        ("unexpected errors == 0", sum(soak.ledger.unexpected.values()) == 0),
        ("every reload ok", all(ok for _, ok, _ in soak.reloads) and bool(soak.reloads)),
        ("at least one flap", flaps > 0),
        ("gateway processes unchanged", first.pids == last.pids),
        (
            f"RSS growth of each process <= max(10 %, 8 MiB) (worst: pid {pid}, "
            f"{growth / 1024:+.1f} of {limit / 1024:.1f} MiB)",
            growth <= limit,
        ),
        ("fd growth <= 5", last.fds - first.fds <= 5),
        ("task growth <= 10", last.tasks - first.tasks <= 10),
        ("latest generation seen by the load", soak.generation in soak.ledger.generations),
    ]
    return Verdict(checks)


async def main_async(args: argparse.Namespace, workdir: Path, stamp: str) -> int:
    """Run the soak, write the report; 0 when every check passed."""
    soak = Soak(args, workdir, args.results / f"soak-{stamp}.log")
    try:
        await soak.start()
        first, last, warmup, elapsed = await soak.run()
    finally:
        await soak.stop()
    result = verdict(soak, first, last)
    text = report(soak, args, first, last, warmup, elapsed, result, stamp)
    path = args.results / f"soak-{stamp}.md"
    path.write_text(text)
    print(text)
    print(f"written to {path}; gateway log {soak.log}", file=sys.stderr)
    return 0 if result.passed else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds in all")
    parser.add_argument("--reload-every", type=float, default=15.0, help="seconds")
    parser.add_argument("--flap-every", type=float, default=15.0, help="seconds between flaps")
    parser.add_argument("--workers", type=int, default=1, help="gateway worker processes")
    parser.add_argument("--clients", type=int, default=8, help="concurrent load clients")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before the baseline")
    parser.add_argument("--sample-every", type=float, default=2.0, help="seconds")
    parser.add_argument("--results", type=Path, default=RESULTS, help="report directory")
    args = parser.parse_args()
    args.results.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    with tempfile.TemporaryDirectory(prefix="kairos-soak-") as workdir:
        return asyncio.run(main_async(args, Path(workdir), stamp))


if __name__ == "__main__":
    raise SystemExit(main())
