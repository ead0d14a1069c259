"""CPU µs per request of the plugin chain (JWT + rate limit + metrics + access log), no network.

    python bench/micro_chain.py                  # table: each stage alone and the full chain
    python bench/micro_chain.py --quick          # fewer requests (wiring check)
    python bench/micro_chain.py --profile full   # cProfile one variant, top functions by tottime
    python bench/micro_chain.py --instructions   # instructions per request (valgrind), exact

Each variant is `bench/configs/bare.yaml` or `full.yaml` (or bare plus one stage), built like
`kairos serve` builds it (`Gateway.prepare` + activation, real plugins, real metrics and access
log file) except that the proxy at the end of the chain is a fake that answers at once. Each
request goes through the real entry point, `HttpEntry.serve` (request id, route match, upstream
headers, context, trace context, stage sampling, the response head written to a sink, cleanups,
metrics and access log); the request objects are made beforehand, outside the timed part. Variants take turns batch
by batch (rotating and alternating order), so load on a shared machine falls on all of them
alike; each figure is the median of the repetitions, and what counts is the difference to
`bare` in the same run.

`--instructions` counts instead of timing: each variant runs in its own process under
valgrind's callgrind, which collects only while the timed requests are served (inside
`operator.call`, a C function nothing else in the process calls). The count is the same from
run to run whatever else the machine does, so it shows what each stage adds exactly; time per
instruction differs between stages (hashing runs many cheap instructions), so it ranks work,
not microseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import cProfile
import gc
import json
import operator
import os
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from unittest import mock

import yaml
from aiohttp import web
from aiohttp.http import HttpVersion11, RawRequestMessage
from aiohttp.streams import EMPTY_PAYLOAD
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

import kairos_core.runtime as runtime_module
from kairos_core.config.loader import load_config_text
from kairos_core.context import RequestContext
from kairos_core.gateway import Gateway
from kairos_core.response import Response
from kairos_core.server.handler import HttpEntry

HERE = Path(__file__).resolve().parent
SECRET = "kairos-bench-secret-0123456789abcdef-0123456789"
BODY = b"x" * 213
PEER = "127.0.0.1"


def bench_token() -> str:
    """An HS256 token that the `full.yaml` route accepts (the one `bench/run.py` sends)."""
    import jwt

    now = int(time.time())
    claims = {"sub": "bench", "iss": "https://issuer.bench", "aud": "api", "iat": now}
    return jwt.encode({**claims, "exp": now + 7 * 86400}, SECRET, algorithm="HS256")


def variants() -> dict[str, dict[str, Any]]:
    """Config documents: bare, bare plus each stage alone, and the full chain."""
    bare = yaml.safe_load((HERE / "configs" / "bare.yaml").read_text())
    full = yaml.safe_load((HERE / "configs" / "full.yaml").read_text())
    plugins = {p["name"]: p for p in full["routes"][0]["plugins"]}
    observability = full["observability"]

    def bare_with(**changes: Any) -> dict[str, Any]:
        doc: dict[str, Any] = copy.deepcopy(bare)
        if "metrics" in changes:
            doc["observability"]["metrics"] = observability["metrics"]
        if "access_log" in changes:
            doc["observability"]["access_log"] = observability["access_log"]
        if "plugin" in changes:
            doc["routes"][0]["plugins"] = [plugins[changes["plugin"]]]
        return doc

    cached = copy.deepcopy(bare)  # every request after the first is a memory-store hit
    cached["routes"][0]["plugins"] = [{"name": "cache", "config": {"default_ttl": 3600}}]

    return {
        "bare": bare,
        "metrics": bare_with(metrics=True),
        "access log": bare_with(access_log=True),
        "jwt": bare_with(plugin="jwt"),
        "rate-limit": bare_with(plugin="rate-limit"),
        "full": full,
        "cache hit": cached,
    }


def fake_proxy(route: Any) -> Callable[[RequestContext], Any]:
    """The end of the chain: what the proxy leaves behind (a backend, a response), at once."""
    backend = route.pool.backends[0]

    async def answer(ctx: RequestContext) -> Response:
        ctx.backend = backend
        ctx.headers["Host"] = backend.host_header  # the upstream request's headers, as sent
        ctx.upstream_seconds = 0.0002
        headers = CIMultiDict(
            {"Content-Type": "application/json", "Content-Length": str(len(BODY))}
        )
        return Response(200, headers, BODY)

    return answer


class Variant:
    """One configuration, built and activated, with a request loop like the entry point's."""

    def __init__(self, name: str, document: dict[str, Any], log_path: str) -> None:
        self.name = name
        env = {**os.environ, "KAIROS_BENCH_LOG": log_path}
        self.loaded = load_config_text(yaml.safe_dump(document), f"<{name}>", env)
        self.gateway = Gateway(self.loaded)
        self.entry = HttpEntry(self.gateway.current, "http")

    async def start(self) -> None:
        """Build the runtime with the fake proxy and activate it (no listener is opened)."""
        with mock.patch.object(runtime_module, "make_proxy_handler", fake_proxy):
            runtime = self.gateway.prepare(self.loaded)
        await self.gateway._activate(runtime)

    async def close(self) -> None:
        """Close plugins and the access log."""
        await self.gateway.stop(0)

    async def serve(self, request: Any) -> int:
        """The real entry point (`HttpEntry.serve`); the status line it wrote gives the status."""
        writer = request.writer
        writer.head = b""
        await self.entry.serve(request)
        return int(writer.head[9:12])


class _Peer:
    """The little of aiohttp's request handler that a `BaseRequest` reads when it is made."""

    ssl_context = None
    peername = (PEER, 40000)
    sockname = ("127.0.0.1", 27092)
    client_peer = PEER
    transport = None


class _Writer:
    """Where the entry point writes the response: keeps the first bytes, discards the rest."""

    def __init__(self) -> None:
        self.output_size = 0
        self.head = b""

    async def write(self, data: bytes) -> None:
        """Count `data` (and keep the start of the status line)."""
        if not self.head:
            self.head = data[:16]
        self.output_size += len(data)


def make_requests(count: int, target: str) -> list[web.BaseRequest]:
    """Fresh requests, made as aiohttp's parser makes them (their lazily parsed parts start empty)."""
    headers = CIMultiDictProxy(
        CIMultiDict({"Host": "127.0.0.1:27092", "User-Agent": "wrk", "Accept": "*/*"})
    )
    raw = tuple((k.encode(), v.encode()) for k, v in headers.items())
    path, _, query = target.partition("?")
    peer = _Peer()
    writer = _Writer()
    requests = []
    for _ in range(count):
        url = URL.build(path=path, query_string=query, encoded=True)
        message = RawRequestMessage(
            "GET", target, HttpVersion11, headers, raw, False, None, False, False, url
        )
        requests.append(web.BaseRequest(message, EMPTY_PAYLOAD, peer, writer, None, None))  # type: ignore[arg-type]
    return requests


async def run_batch(variant: Variant, requests: list[Any]) -> int:
    """CPU nanoseconds to serve `requests` through `variant`."""
    serve = variant.serve
    started = time.process_time_ns()
    for request in requests:
        status = await serve(request)
        if status != 200:
            raise SystemExit(f"{variant.name}: status {status}")
    return time.process_time_ns() - started


async def measure(
    reps: int, batches: int, batch: int, target: str, log_path: str
) -> dict[str, list[float]]:
    """µs per request for every variant; variants take turns batch by batch, in rotating order."""
    built = [Variant(n, d, log_path) for n, d in variants().items()]
    for variant in built:
        await variant.start()
    results: dict[str, list[float]] = {v.name: [] for v in built}
    try:
        for variant in built:  # warm-up: caches, counters, lazily created children
            await run_batch(variant, make_requests(batch, target))
        turn = 0
        for _ in range(reps):
            spent = dict.fromkeys(results, 0)
            for _ in range(batches):
                turn += 1
                shift = turn % len(built)
                order = built[shift:] + built[:shift]
                for variant in order if turn % 2 else order[::-1]:
                    requests = make_requests(batch, target)
                    gc.collect()
                    spent[variant.name] += await run_batch(variant, requests)
            for name, ns in spent.items():
                results[name].append(ns / (batches * batch) / 1000)
    finally:
        for variant in built:
            await variant.close()
    return results


async def profile(name: str, count: int, target: str, log_path: str) -> None:
    """cProfile `count` requests through one variant; print the top functions."""
    variant = Variant(name, variants()[name], log_path)
    await variant.start()
    try:
        await run_batch(variant, make_requests(1000, target))
        requests = make_requests(count, target)
        profiler = cProfile.Profile()
        profiler.enable()
        await run_batch(variant, requests)
        profiler.disable()
    finally:
        await variant.close()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(35)


def single_stages(names: Iterable[str]) -> list[str]:
    """The variants that are `bare` plus one stage (what the full chain should add up to)."""
    return [n for n in names if n not in ("bare", "full", "cache hit")]


def serve_counted(name: str, count: int, target: str, log_path: str) -> None:
    """Serve `count` requests through one variant inside `operator.call` (what callgrind counts)."""
    loop = asyncio.new_event_loop()
    variant = Variant(name, variants()[name], log_path)
    try:
        loop.run_until_complete(variant.start())
        loop.run_until_complete(run_batch(variant, make_requests(500, target)))  # warm-up
        requests = make_requests(count, target)
        gc.collect()
        gc.freeze()  # as `kairos serve` does once started
        operator.call(loop.run_until_complete, run_batch(variant, requests))
        loop.run_until_complete(variant.close())
    finally:
        loop.close()


def count_instructions(name: str, count: int, scratch: str) -> int:
    """Instructions per request of one variant, counted by callgrind in a child process."""
    command = [
        "valgrind",
        "--tool=callgrind",
        "--collect-atstart=no",
        "--toggle-collect=_operator_call",
        f"--callgrind-out-file={scratch}/callgrind.{name.replace(' ', '-')}",
        sys.executable,
        __file__,
        "--serve-counted",
        name,
        "--count",
        str(count),
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        # a non-200 answer ends the counted run too (run_batch): its message is in stderr
        raise SystemExit(f"{name}: the counted run failed under valgrind\n{done.stderr[-2000:]}")
    collected = int(found.group(1))
    if collected < count * 1000:
        raise SystemExit(
            f"{name}: callgrind counted {collected} instructions for {count} requests; this "
            "Python's `_operator_call` symbol is probably stripped, so nothing was collected"
        )
    return collected // count


def instruction_table(counts: dict[str, int], count: int) -> str:
    """Markdown: instructions per request and the difference to `bare`."""
    bare = counts["bare"]
    lines = [
        f"Instructions per request through the prebuilt chain (callgrind), {count:,} requests "
        "per variant\n",
        "| variant | instructions/request | over bare |",
        "|---|---:|---:|",
    ]
    for name, value in counts.items():
        over = "" if name == "bare" else f"{value - bare:+,}"
        lines.append(f"| {name} | {value:,} | {over} |")
    parts = sum(counts[n] - bare for n in single_stages(counts))
    lines.append(f"\nSum of the single stages over bare: {parts:+,}")
    return "\n".join(lines)


def table(results: dict[str, list[float]], reps: int, count: int) -> str:
    """Markdown: median µs per request and the difference to `bare`."""
    bare = statistics.median(results["bare"])
    lines = [
        f"CPU µs per request through the prebuilt chain, fake proxy, {count:,} requests per "
        f"variant and repetition, median of {reps} interleaved repetitions\n",
        "| variant | µs/request | over bare | spread (min-max) |",
        "|---|---:|---:|---:|",
    ]
    for name, values in results.items():
        median = statistics.median(values)
        over = "" if name == "bare" else f"{median - bare:+.2f}"
        lines.append(f"| {name} | {median:.2f} | {over} | {min(values):.2f}-{max(values):.2f} |")
    parts = sum(statistics.median(results[n]) - bare for n in single_stages(results))
    lines.append(f"\nSum of the single stages over bare: {parts:+.2f} µs")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests: checks the wiring")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--profile", metavar="VARIANT", help="cProfile one variant instead")
    parser.add_argument("--json", metavar="PATH", help="also write every repetition's µs as JSON")
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions (valgrind) instead"
    )
    parser.add_argument("--count", type=int, default=1000, help=argparse.SUPPRESS)
    parser.add_argument("--serve-counted", metavar="VARIANT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    target = f"/api/item?id=1&access_token={bench_token()}"
    for chosen in (args.profile, args.serve_counted):
        if chosen and chosen not in variants():
            parser.error(f"{chosen!r}: not one of {', '.join(variants())}")
    if args.instructions and shutil.which("valgrind") is None:
        parser.error("--instructions needs valgrind (apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="kairos-micro-chain-") as scratch:
        log_path = f"{scratch}/access.log"
        if args.serve_counted:
            serve_counted(args.serve_counted, args.count, target, log_path)
            return 0
        if args.instructions:
            names = list(variants())
            with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
                counted = pool.map(lambda n: count_instructions(n, args.count, scratch), names)
                counts = dict(zip(names, counted, strict=True))
            print(instruction_table(counts, args.count))
            return 0
        if args.profile:
            asyncio.run(profile(args.profile, 20_000, target, log_path))
            return 0
        reps = 3 if args.quick else args.reps
        batches, batch = (4, 500) if args.quick else (20, 1000)
        results = asyncio.run(measure(reps, batches, batch, target, log_path))
    print(table(results, reps, batches * batch))
    if args.json:
        Path(args.json).write_text(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
