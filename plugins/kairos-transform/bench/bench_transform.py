"""Microbenchmark: µs per request spent in the transform stage (and neighbours, for scale).

Run with the plugin's venv:  python plugins/kairos-transform/bench/bench_transform.py
Each case builds its stage once (as the gateway does at config load) and then awaits it
with a fresh RequestContext and a fresh upstream Response per iteration; the "call_next"
stands in for the proxy, so the figures are the stage's own cost, not the network's.
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import kairos_transform
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from kairos_core import BuildContext, GatewayServices, Handler, Middleware, RequestContext, Response
from kairos_core.config.models import GatewayConfig

DOC = {
    "id": 1234,
    "name": "Ann Lee",
    "email": "ann@example.com",
    "password": "hunter2",
    "items": [{"sku": f"sku-{i}", "qty": i, "internal": "x"} for i in range(5)],
    "meta": {"created": "2026-01-01T00:00:00Z", "tags": ["a", "b", "c"]},
}
RAW = json.dumps(DOC).encode()
RAW_GZIP = gzip.compress(RAW)
ROUTE = SimpleNamespace(name="bench", max_body_size=1 << 20, timeouts=SimpleNamespace(read=60.0))
SERVICES = GatewayServices(config=GatewayConfig(), consumers={}, pools={})
CONTEXT = BuildContext("route", "bench", None, SERVICES)

HEADERS_ONLY = {
    "request": {
        "headers": [
            {"action": "add", "name": "X-Gateway", "value": "kairos"},
            {"action": "set", "name": "X-Client", "value": "$(client_ip)"},
            {"action": "remove", "name": "X-Debug"},
        ]
    },
    "response": {
        "headers": [
            {"action": "remove", "name": "Server"},
            {"action": "set", "name": "X-Request", "value": "$(request_id)"},
        ]
    },
}
BODY_ACTIONS = [
    {"action": "remove", "path": "password"},
    {"action": "remove", "path": "items.*.internal"},
    {"action": "rename", "path": "name", "to": "full_name"},
    {"action": "set", "path": "meta.via", "value": "kairos"},
]


CLIENT_HEADERS = CIMultiDict(
    {"Content-Type": "application/json", "X-Debug": "1", "Accept": "application/json"}
)
REQUEST = make_mocked_request("POST", "/orders?page=2", headers=CLIENT_HEADERS)


def context(body: bytes | None = None) -> RequestContext:
    """A fresh context for a JSON POST, its body already received when given."""
    ctx = RequestContext(
        REQUEST,
        ROUTE,  # type: ignore[arg-type]
        {},
        "0123456789abcdef",
        "203.0.113.7",
        "http",
        "gw.test",
        "/orders",
        "page=2",
        CIMultiDict(CLIENT_HEADERS),
        0.0,
    )
    if body is not None:
        ctx.set_body(body)
    return ctx


def upstream(body: bytes, encoding: str | None = None) -> Handler:
    """A stand-in for the proxy: a fresh JSON response per call."""

    async def call_next(ctx: RequestContext) -> Response:
        headers = CIMultiDict({"Content-Type": "application/json", "Server": "backend"})
        if encoding:
            headers["Content-Encoding"] = encoding
        headers["Content-Length"] = str(len(body))
        return Response(200, headers, body)

    return call_next


async def passthrough(ctx: RequestContext, call_next: Handler) -> Response:
    """The baseline: a stage that does nothing."""
    return await call_next(ctx)


def transform(config: dict[str, Any]) -> Middleware:
    return kairos_transform.build(kairos_transform.TransformConfig.model_validate(config), CONTEXT)


async def measure(
    stage: Middleware, make_ctx: Callable[[], RequestContext], call_next: Handler, n: int
) -> float:
    """Mean µs per request for `stage` (context creation measured separately and subtracted)."""
    for _ in range(min(n, 500)):
        await stage(make_ctx(), call_next)
    start = time.perf_counter()
    for _ in range(n):
        make_ctx()
    overhead = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(n):
        response = await stage(make_ctx(), call_next)
        assert response.status < 300, response.body
    return (time.perf_counter() - start - overhead) / n * 1e6


def headers_plugin_case() -> list[tuple[str, Middleware, Callable[[], RequestContext], Handler]]:
    """The `headers` plugin with comparable edits, when it is installed (another baseline)."""
    try:
        import kairos_headers
    except ImportError:
        return []
    config = kairos_headers.HeadersConfig.model_validate(
        {
            "request": {"remove": ["X-Debug"], "set": {"X-Client": "x"}, "add": {"X-Gateway": "k"}},
            "response": {"remove": ["Server"], "set": {"X-Request": "r"}},
        }
    )
    stage = kairos_headers.build(config, CONTEXT)
    return [
        ("baseline: kairos-headers, same edits without templates", stage, context, upstream(RAW))
    ]


async def main(n: int, rounds: int) -> None:
    cases: list[tuple[str, Middleware, Callable[[], RequestContext], Handler]] = [
        ("baseline: pass-through stage", passthrough, context, upstream(RAW)),
        *headers_plugin_case(),
        (
            "header-only transform (3 request + 2 response actions)",
            transform(HEADERS_ONLY),
            context,
            upstream(RAW),
        ),
        (
            f"JSON request body transform (4 actions, {len(RAW)} B)",
            transform({"request": {"body": BODY_ACTIONS}}),
            lambda: context(RAW),
            upstream(b"{}"),
        ),
        (
            f"JSON response body transform (4 actions, {len(RAW)} B)",
            transform({"response": {"body": BODY_ACTIONS}}),
            context,
            upstream(RAW),
        ),
        (
            f"JSON response body transform, gzip ({len(RAW_GZIP)} B on the wire)",
            transform({"response": {"body": BODY_ACTIONS}}),
            context,
            upstream(RAW_GZIP, "gzip"),
        ),
        (
            "status mapping 200 -> 203 with a new body",
            transform({"response": {"status": [{"from": 200, "to": 203, "body": {"ok": True}}]}}),
            context,
            upstream(RAW),
        ),
    ]
    print(f"| case (best of {rounds} x {n} requests) | µs / request | over baseline |")
    print("|---|---:|---:|")
    baseline = None
    for name, stage, make_ctx, call_next in cases:
        micros = min([await measure(stage, make_ctx, call_next, n) for _ in range(rounds)])
        baseline = micros if baseline is None else baseline
        extra = "" if micros is baseline else f"+{micros - baseline:.1f}"
        print(f"| {name} | {micros:.1f} | {extra} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per case; the best counts")
    args = parser.parse_args()
    asyncio.run(main(args.n, args.rounds))
