"""Microbenchmark: µs per request spent in the cors stage (preflight and actual requests).

Run with the plugin's venv:  python plugins/kairos-cors/bench/bench_cors.py
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from types import SimpleNamespace

import kairos_cors
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from kairos_core import BuildContext, GatewayServices, Handler, Middleware, RequestContext, Response
from kairos_core.config.models import GatewayConfig

ROUTE = SimpleNamespace(name="bench", max_body_size=1 << 20, timeouts=SimpleNamespace(read=60.0))
CONTEXT = BuildContext("route", "bench", None, GatewayServices(GatewayConfig(), {}, {}))
CONFIG = {
    "allow_origins": ["https://app.example.com", "https://*.example.org"],
    "allow_headers": ["Authorization", "X-Trace"],
    "expose_headers": ["X-Request-ID"],
    "allow_credentials": True,
}


def requester(method: str, headers: dict[str, str]) -> Callable[[], RequestContext]:
    request = make_mocked_request(method, "/api/items", headers=CIMultiDict(headers))

    def make() -> RequestContext:
        return RequestContext(
            request,
            ROUTE,  # type: ignore[arg-type]
            {},
            "rid",
            "127.0.0.1",
            "http",
            "gw",
            "/api/items",
            "",
            CIMultiDict(),
            0.0,
        )

    return make


async def upstream(ctx: RequestContext) -> Response:
    return Response(200, CIMultiDict({"Content-Type": "application/json"}), b"{}")


async def passthrough(ctx: RequestContext, call_next: Handler) -> Response:
    return await call_next(ctx)


async def measure(stage: Middleware, make_ctx: Callable[[], RequestContext], n: int) -> float:
    for _ in range(500):
        await stage(make_ctx(), upstream)
    start = time.perf_counter()
    for _ in range(n):
        await stage(make_ctx(), upstream)
    return (time.perf_counter() - start) / n * 1e6


async def main(n: int) -> None:
    cors = kairos_cors.build(kairos_cors.CorsConfig.model_validate(CONFIG), CONTEXT)
    simple = requester("GET", {"Origin": "https://shop.example.org"})
    cases: list[tuple[str, Middleware, Callable[[], RequestContext]]] = [
        ("baseline: pass-through stage", passthrough, simple),
        ("actual request, allowed wildcard origin", cors, simple),
        (
            "actual request, disallowed origin",
            cors,
            requester("GET", {"Origin": "https://evil.test"}),
        ),
        ("actual request, no Origin", cors, requester("GET", {})),
        (
            "preflight, allowed (answered at the gateway)",
            cors,
            requester(
                "OPTIONS",
                {
                    "Origin": "https://app.example.com",
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization, content-type",
                },
            ),
        ),
    ]
    print(f"| case ({n} requests each) | µs / request |")
    print("|---|---:|")
    for name, stage, make in cases:
        print(f"| {name} | {await measure(stage, make, n):.2f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50000, help="requests per case")
    asyncio.run(main(parser.parse_args().n))
