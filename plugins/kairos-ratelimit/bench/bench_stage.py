"""CPU the `rate-limit` stage adds to one request: key, checks, metrics and headers, as built.

Run with the plugin's venv: `python plugins/kairos-ratelimit/bench/bench_stage.py [--quick]`.
The stage is built and started like the gateway does it, then awaited with a minimal request
context and an inner handler that returns at once; the table is markdown.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from types import SimpleNamespace
from typing import Any

from kairos_ratelimit import RateLimitConfig, RateLimitStage
from multidict import CIMultiDict

from kairos_core import BuildContext, GatewayServices, Response

PROXIED_REQUEST_US = 200.0

TWO_LIMITS = {
    "limits": [
        {"rate": "100000/s", "algorithm": "gcra"},
        {"rate": "100000000/h", "algorithm": "sliding_window_counter"},
    ]
}
CASES: list[tuple[str, dict[str, Any], int]] = [
    ("token bucket per IP, headers both", {"limits": [{"rate": "100000/s"}]}, 1),
    (
        "token bucket per IP, no headers",
        {"limits": [{"rate": "100000/s"}], "headers": {"style": "none"}},
        1,
    ),
    ("per second + per hour (GCRA + sliding counter) per IP", TWO_LIMITS, 1),
    (
        "concurrency per route",
        {"limits": [{"algorithm": "concurrency", "limit": 1000}], "key": ["route"]},
        1,
    ),
    ("token bucket per IP, shared memory (--workers 2)", {"limits": [{"rate": "100000/s"}]}, 2),
    ("per second + per hour per IP, shared memory (--workers 2)", TWO_LIMITS, 2),
    ("refused: 429 with JSON body and headers", {"limits": [{"rate": "1/h"}]}, 1),
]


async def per_request_us(config: dict[str, Any], workers: int, count: int) -> float:
    services = GatewayServices(
        config=None,  # type: ignore[arg-type]  # the stage does not read the gateway config
        consumers={},
        pools={},
        worker_id=0,
        workers=workers,
        instance_id=f"{os.getpid()}-bench{workers}",
    )
    settings = RateLimitConfig.model_validate({**config, "max_keys": 100_000})
    stage = RateLimitStage("rate-limit", settings, BuildContext("route", "bench", None, services))
    await stage.start()
    response = Response(200, CIMultiDict(), b"")

    async def inner(ctx: Any) -> Response:
        return response

    contexts = [
        SimpleNamespace(
            client_ip=f"198.51.100.{i % 250}",
            route=SimpleNamespace(name="bench"),
            request=SimpleNamespace(headers=CIMultiDict()),
            consumer=None,
            claims=None,
            request_id="r",
            cleanups=[],
        )
        for i in range(5000)
    ]
    for ctx in contexts:
        ctx.add_cleanup = ctx.cleanups.append
    started = time.process_time()
    for i in range(count):
        ctx = contexts[i % 5000]
        await stage(ctx, inner)  # type: ignore[arg-type]
        for cleanup in ctx.cleanups:
            cleanup()
        ctx.cleanups.clear()
        response.headers.clear()
    elapsed = time.process_time() - started
    await stage.close()
    return elapsed / count * 1e6


async def main(count: int) -> None:
    async def nothing(ctx: Any) -> Response:
        return Response(200, CIMultiDict(), b"")

    started = time.process_time()
    for _ in range(count):
        await nothing(None)
    baseline = (time.process_time() - started) / count * 1e6
    print(f"## `rate-limit` stage cost per request ({count:,} requests over 5,000 client IPs)\n")
    print("Limits are generous, so every request but the last row's is allowed.\n")
    print("| configuration | stage µs/request | % of a 200 µs proxied request |")
    print("|---|---:|---:|")
    for name, config, workers in CASES:
        cost = await per_request_us(config, workers, count) - baseline
        print(f"| {name} | {cost:.2f} | {cost / PROXIED_REQUEST_US * 100:.1f}% |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(20_000 if args.quick else 200_000))
