"""Microbenchmark: µs of CPU per decision, without the network (cache hit, prompt building).

Run with the plugin's venv:  python plugins/kairos-ai/bench/bench_decision.py
Builds one `ai` balancer over a pool of three backends (as the gateway does at load) and
times, per request: a round-robin pick (the baseline), an `ai` decision served from the
cache, and the work of a cache miss before the call goes out (reading the request
features, redaction, rendering the messages). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

from aiohttp.test_utils import make_mocked_request
from kairos_ai import AiBalancer, AiBalancerConfig
from multidict import CIMultiDict

from kairos_core import RequestContext, UpstreamPool
from kairos_core.builtin.round_robin import RoundRobin
from kairos_core.config.models import UpstreamConfig

ROUTE = SimpleNamespace(name="bench", max_body_size=1 << 20, timeouts=SimpleNamespace(read=60.0))
BODY = json.dumps(
    {"prompt": "Summarise the attached contract for ann@example.com", "card": "4111111111111111"}
).encode()
HEADERS = CIMultiDict(
    {
        "Content-Type": "application/json",
        "Authorization": "Bearer secret",
        "X-Tenant-Region": "eu",
        "User-Agent": "bench",
    }
)
REQUEST = make_mocked_request("POST", "/v1/complete?stream=false", headers=HEADERS)
CONFIG = AiBalancerConfig.model_validate(
    {
        "endpoint": {"base_url": "http://127.0.0.1:9/v1", "model": "bench"},
        "backends": {
            "small": {"description": "8B model: fast and cheap", "tags": ["fast"]},
            "large": {"description": "70B model: long documents", "tags": ["gpu"]},
            "eu": {"description": "EU data only", "tags": ["eu"]},
        },
        "request": {"headers": ["content-type", "x-tenant-region"], "body_bytes": 1024},
        "cache": {"ttl": 3600, "key": ["method", "path", "header:x-tenant-region"]},
    }
)


def context() -> RequestContext:
    """A fresh context for a JSON POST with its body received."""
    ctx = RequestContext(
        REQUEST,
        ROUTE,  # type: ignore[arg-type]
        {},
        "0123456789abcdef",
        "203.0.113.7",
        "http",
        "gw.test",
        "/v1/complete",
        "stream=false",
        CIMultiDict(HEADERS),
        0.0,
    )
    ctx.set_body(BODY)
    return ctx


def pool(factory: Callable[[UpstreamPool], Any]) -> UpstreamPool:
    config = UpstreamConfig.model_validate(
        {
            "backends": [
                {"name": name, "url": f"http://10.0.0.{i}:8000"}
                for i, name in enumerate(("small", "large", "eu"), 1)
            ]
        }
    )
    return UpstreamPool("bench", config, None, factory)  # type: ignore[arg-type]


async def measure(step: Callable[[RequestContext], Awaitable[Any] | Any], n: int) -> float:
    """Mean µs per call of `step`, context creation subtracted."""
    start = time.perf_counter()
    for _ in range(n):
        context()
    overhead = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(n):
        result = step(context())
        if asyncio.iscoroutine(result):
            await result
    return (time.perf_counter() - start - overhead) / n * 1e6


async def main(n: int) -> None:
    rr_pool = pool(lambda p: RoundRobin())
    ai_pool = pool(lambda p: AiBalancer(CONFIG, p))
    balancer: AiBalancer = ai_pool.balancer  # type: ignore[assignment]
    warm = context()
    balancer.cache.put(balancer.reader.cache_key(balancer.reader.from_context(warm)), "eu")
    candidates = ai_pool.candidates

    def rr(ctx: RequestContext) -> Any:
        return rr_pool.balancer.pick(ctx, candidates)

    async def cache_hit(ctx: RequestContext) -> Any:
        backend = await balancer.pick_async(ctx, candidates)
        assert backend is not None
        assert backend.name == "eu"

    async def miss_work(ctx: RequestContext) -> Any:
        reader = balancer.reader
        sample = await reader.read_body(ctx, reader.from_context(ctx))
        names = tuple(b.name for b in candidates)
        prompt = balancer.prompts.for_candidates(names)
        return balancer.prompts.messages(prompt, reader.document(sample))

    results = []
    for name, step in (
        ("round_robin pick (baseline)", rr),
        ("ai decision, cache hit", cache_hit),
        ("ai cache miss: features + redaction + messages", miss_work),
    ):
        await measure(step, min(n, 2000))
        results.append((name, await measure(step, n)))
    await balancer.close()
    print(f"| case ({n} calls) | µs / request |")
    print("|---|---:|")
    for name, micros in results:
        print(f"| {name} | {micros:.1f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50_000, help="calls per case")
    asyncio.run(main(parser.parse_args().n))
