"""Microbenchmark of the cache stage in-process: µs per lookup+serve, beside a pass-through stage.

    python plugins/kairos-cache/bench/bench_hit_path.py [--iterations N] [--redis URL]

Builds the `cache` stage exactly as the gateway does (CachePlugin.build) and awaits it with a
real aiohttp request object; the "next handler" stands in for the proxy and returns a 213-byte
JSON body (the proxy anchors' payload). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
import uuid
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

from aiohttp.test_utils import make_mocked_request
from kairos_cache import CacheConfig, CachePlugin
from kairos_cache.keys import PurgeFilter
from multidict import CIMultiDict

from kairos_core import BuildContext, GatewayServices, RequestContext, Response
from kairos_core.testing import redis_available

BODY = (
    b'{"id":12345,"name":"anchor-item","status":"active","tags":["alpha","beta","gamma"],'
    b'"price":19.99,"currency":"EUR","updated_at":"2024-01-01T00:00:00Z","owner":{"id":42,'
    b'"name":"bench"},"note":"fixed anchor payload"}'
)
ROUTE = SimpleNamespace(name="bench")


def context(headers: dict[str, str] | None = None, item: int = 1) -> RequestContext:
    """A request context like the gateway's entry point builds for `GET /api/item?id=1`."""
    sent = {"Host": "127.0.0.1:27090", "User-Agent": "wrk", **(headers or {})}
    request = make_mocked_request("GET", f"/api/item?id={item}", headers=sent)
    return RequestContext(
        request,
        ROUTE,  # type: ignore[arg-type]
        {},
        "rid",
        "127.0.0.1",
        "http",
        sent["Host"],
        "/api/item",
        f"id={item}",
        CIMultiDict(sent),
        0.0,
    )


def backend(extra: dict[str, str] | None = None) -> Callable[[RequestContext], Awaitable[Response]]:
    """The stand-in for the proxy: a fresh response per call, as a backend would send."""

    async def respond(ctx: RequestContext) -> Response:
        headers = CIMultiDict(
            {
                "Content-Type": "application/json",
                "Cache-Control": "max-age=3600",
                "ETag": '"v1"',
                "Server": "nginx",
                **(extra or {}),
            }
        )
        return Response(200, headers, BODY)

    return respond


def build(config: dict[str, Any]) -> Any:
    """The `cache` stage as the gateway builds it for a route."""
    services = GatewayServices(config=None, consumers={}, pools={})  # type: ignore[arg-type]
    return CachePlugin().build(
        CacheConfig.model_validate(config), BuildContext("route", "bench", None, services)
    )


Timing = tuple[float, float]
"""(CPU µs, wall-clock µs) per call."""


async def per_call(run: Callable[[], Awaitable[Any]], iterations: int) -> Timing:
    """Mean CPU and wall µs per awaited call over `iterations` (after a warm-up), GC paused."""
    for _ in range(min(iterations // 10, 2000)):
        await run()
    gc.collect()
    gc.disable()
    try:
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(iterations):
            await run()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        gc.enable()
    return cpu / iterations * 1e6, wall / iterations * 1e6


async def case_hit(iterations: int, config: dict[str, Any], **request: Any) -> Timing:
    stage = build(config)
    handler = backend(request.pop("response_headers", None))
    ctx = context(request.pop("headers", None))
    first = await stage(ctx, handler)
    await first.read()
    await first.close()
    assert (await stage(ctx, handler)).headers["X-Cache"] == "HIT"

    async def once() -> Response:
        return await stage(ctx, handler)  # type: ignore[no-any-return]

    result = await per_call(once, iterations)
    await stage.close()
    return result


async def case_miss(iterations: int) -> Timing:
    stage = build({"memory": {"max_bytes": "4MiB"}})
    handler = backend()
    warmup = min(iterations // 10, 2000)
    contexts = iter([context(item=i) for i in range(iterations + warmup)])

    async def once() -> None:
        response = await stage(next(contexts), handler)  # a new URL each time: always a miss
        await response.close()

    result = await per_call(once, iterations)
    await stage.close()
    return result


async def case_passthrough(iterations: int) -> Timing:
    handler = backend()
    ctx = context()

    async def stage(ctx: RequestContext, call_next: Any) -> Response:
        return await call_next(ctx)  # type: ignore[no-any-return]

    async def once() -> Response:
        return await stage(ctx, handler)

    return await per_call(once, iterations)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=50_000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    n = args.iterations
    rows: list[tuple[str, Timing]] = [
        ("pass-through stage (floor: one await of the next handler)", await case_passthrough(n)),
        ("memory: HIT (lookup + serve)", await case_hit(n, {})),
        (
            "memory: HIT, response has `Vary: Accept-Encoding` (2 lookups)",
            await case_hit(
                n,
                {},
                headers={"Accept-Encoding": "gzip"},
                response_headers={"Vary": "Accept-Encoding"},
            ),
        ),
        (
            "memory: client `If-None-Match` answered 304",
            await case_hit(n, {}, headers={"If-None-Match": '"v1"'}),
        ),
        ("memory: MISS + store (new key each call)", await case_miss(n // 5)),
    ]
    if redis_available():
        namespace = f"kairos-bench:{uuid.uuid4().hex}:"
        redis = {"backend": "redis", "redis": {"url": args.redis, "namespace": namespace}}
        rows.append(("redis (loopback): HIT (1 GET round trip)", await case_hit(n // 10, redis)))
        compressed = {
            **redis,
            "redis": {**redis["redis"], "compress": True, "compress_min_size": 0},
        }
        rows.append(
            ("redis (loopback): HIT, zlib-compressed entry", await case_hit(n // 10, compressed))
        )
        stage = build(redis)
        await stage.purge(PurgeFilter())  # leave nothing behind in the shared Redis
        await stage.close()
    print("| case | CPU µs per request | wall µs per request |")
    print("|---|---:|---:|")
    for name, (cpu, wall) in rows:
        print(f"| {name} | {cpu:.2f} | {wall:.2f} |")


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
