"""Microbenchmark of the `otel` stage: µs per request on the event loop, and per span off it.

    python plugins/kairos-otel/bench/bench_span_cost.py [--iterations N]

Builds the `otel` stage as the gateway does and awaits it with real aiohttp request objects
and a stand-in for the proxy, then runs the request's cleanups as the core does. The trace
context is set the way the core sets it. Rows:

- the stage's request-path cost for sampled-out and sampled requests, beside a stage that only
  awaits `call_next` (the cost of any stage);
- the export thread's cost per span (building the SDK `ReadableSpan`s and OTLP protobuf
  encoding of a 512-span batch; HTTP excluded);
- for comparison, the same span made through the SDK's Tracer with a custom IdGenerator
  (the alternative way to get the core's ids into SDK spans), sampled in and out.

Prints a markdown table (CPU µs and wall µs per operation; GC paused while timing).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

from aiohttp.test_utils import make_mocked_request
from kairos_otel import OtelConfig, build
from kairos_otel.records import to_spans
from multidict import CIMultiDict
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from kairos_core import (
    BuildContext,
    GatewayServices,
    Handler,
    RequestContext,
    Response,
)
from kairos_core.config import GatewayConfig

ROUTE = SimpleNamespace(name="bench")
BACKEND = SimpleNamespace(
    pool_name="bench",
    name="127.0.0.1:27080",
    host="127.0.0.1",
    port=27080,
    url="http://127.0.0.1:27080",
)
CLIENT_SPAN = "00f067aa0ba902b7"
Timing = tuple[float, float]


def contexts(count: int, parent_flags: str | None) -> list[RequestContext]:
    """Request contexts for `GET /api/item?id=1` with the trace fields the core sets."""
    out = []
    for _ in range(count):
        trace_id = f"{random.getrandbits(128):032x}"
        span_id = f"{random.getrandbits(64):016x}"
        sent = {"Host": "127.0.0.1:27090", "User-Agent": "wrk"}
        if parent_flags is not None:
            sent["traceparent"] = f"00-{trace_id}-{CLIENT_SPAN}-{parent_flags}"
        request = make_mocked_request("GET", "/api/item?id=1", headers=sent)
        ctx = RequestContext(
            request,
            ROUTE,  # type: ignore[arg-type]
            {},
            "rid",
            "127.0.0.1",
            "http",
            sent["Host"],
            "/api/item",
            "id=1",
            CIMultiDict(sent),
            time.monotonic(),
        )
        ctx.trace_id, ctx.span_id = trace_id, span_id
        ctx.parent_span_id = CLIENT_SPAN if parent_flags is not None else None
        ctx.headers["traceparent"] = f"00-{trace_id}-{span_id}-{parent_flags or '01'}"
        ctx.backend = BACKEND  # type: ignore[assignment]
        out.append(ctx)
    return out


async def proxy(ctx: RequestContext) -> Response:
    """The stand-in for the proxy."""
    return Response(200, CIMultiDict(), b"{}")


async def passthrough(ctx: RequestContext, call_next: Handler) -> Response:
    """A stage that does nothing: the floor every stage pays."""
    return await call_next(ctx)


def otel_stage(**settings: Any) -> Any:
    """The `otel` stage as the gateway builds it (its pipeline is not started: enqueue only)."""
    services = GatewayServices(GatewayConfig.model_validate({}), {}, {})
    config = OtelConfig(max_queue_size=10**7, max_export_batch_size=10**7, **settings)
    return build(config, BuildContext("global", None, None, services))


async def timed(run: Callable[[], Awaitable[Any]], iterations: int) -> Timing:
    """Mean CPU and wall µs per awaited call, GC paused."""
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


async def case_stage(
    stage: Callable[[RequestContext, Handler], Awaitable[Response]],
    iterations: int,
    parent_flags: str | None,
) -> Timing:
    """One request through `stage`, then its cleanups, as the core runs them."""
    pool = contexts(2000, parent_flags)
    index = 0

    async def once() -> None:
        nonlocal index
        ctx = pool[index % 2000]
        index += 1
        ctx.headers["traceparent"] = f"00-{ctx.trace_id}-{ctx.span_id}-{parent_flags or '01'}"
        await stage(ctx, proxy)
        await ctx.run_cleanups()

    await timed(once, 2000)
    baseline_pipeline = getattr(stage, "pipeline", None)
    result = await timed(once, iterations)
    if baseline_pipeline is not None:
        baseline_pipeline.queue.clear()
    return result


async def case_export_thread(iterations: int) -> Timing:
    """Per span: SpanRecords to SDK spans, then OTLP protobuf encoding, in batches of 512."""
    stage = otel_stage()
    pool = contexts(512, "01")
    for ctx in pool:
        await stage(ctx, proxy)
        await ctx.run_cleanups()
    records = list(stage.pipeline.queue)
    resource = Resource.create({"service.name": "kairos"})
    scope = InstrumentationScope("kairos_otel", "bench")
    batches = max(1, iterations // 512)

    async def once() -> None:
        spans: list[ReadableSpan] = []
        for record in records:
            spans += to_spans(record, resource, scope)
        encode_spans(spans).SerializePartialToString()

    cpu, wall = await timed(once, batches)
    return cpu / 512, wall / 512


class _FixedIds(IdGenerator):
    """Hands the SDK the ids the core chose (set just before `start_span`)."""

    def __init__(self) -> None:
        self.trace_id = 0
        self.span_id = 0

    def generate_span_id(self) -> int:
        return self.span_id

    def generate_trace_id(self) -> int:
        return self.trace_id


class _QueueProcessor(SpanProcessor):
    """Only enqueues ended spans, like the export side of a batch processor."""

    def __init__(self) -> None:
        self.queue: deque[ReadableSpan] = deque()

    def on_end(self, span: ReadableSpan) -> None:
        self.queue.append(span)


async def case_sdk_tracer(iterations: int, ratio: float) -> Timing:
    """The alternative: Tracer.start_span with a custom IdGenerator and the parent as context."""
    ids = _FixedIds()
    provider = TracerProvider(
        sampler=ParentBased(TraceIdRatioBased(ratio)),
        id_generator=ids,
        resource=Resource.create({}),
    )
    processor = _QueueProcessor()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("bench")
    pool = [
        (c, int(c.trace_id or "1", 16), int(c.span_id or "1", 16)) for c in contexts(2000, None)
    ]
    index = 0

    async def once() -> None:
        nonlocal index
        ctx, ids.trace_id, ids.span_id = pool[index % 2000]
        index += 1
        parent = NonRecordingSpan(
            SpanContext(ids.trace_id, int(CLIENT_SPAN, 16), True, TraceFlags(0))
        )
        context = trace.set_span_in_context(parent) if ratio >= 1 else None
        span = tracer.start_span("GET bench", context, SpanKind.SERVER, start_time=time.time_ns())
        await proxy(ctx)
        if span.is_recording():
            request = ctx.request
            span.set_attributes(
                {
                    "http.request.method": request.method,
                    "url.path": request.path,
                    "url.scheme": ctx.scheme,
                    "http.route": ctx.route.name,
                    "http.response.status_code": 200,
                    "server.address": "127.0.0.1",
                    "server.port": 27090,
                    "client.address": ctx.client_ip,
                    "user_agent.original": request.headers.get("User-Agent", ""),
                    "network.protocol.version": "1.1",
                    "kairos.request_id": ctx.request_id,
                    "kairos.retries": 0,
                    "kairos.upstream": "bench",
                    "kairos.backend": "127.0.0.1:27080",
                }
            )
        span.end()

    await timed(once, 2000)
    result = await timed(once, iterations)
    processor.queue.clear()
    return result


async def main(iterations: int) -> None:
    rows: list[tuple[str, Timing]] = [
        ("pass-through stage (any stage's floor)", await case_stage(passthrough, iterations, None)),
        (
            "otel, not sampled: client said 00 (parent-based)",
            await case_stage(otel_stage(sample_ratio=0.0), iterations, "00"),
        ),
        (
            "otel, not sampled: new trace, ratio 0 (flag rewritten)",
            await case_stage(otel_stage(sample_ratio=0.0), iterations, None),
        ),
        (
            "otel, sampled: new trace, ratio 1",
            await case_stage(otel_stage(sample_ratio=1.0), iterations, None),
        ),
        (
            "otel, sampled: client said 01, + tracestate header lookup",
            await case_stage(otel_stage(), iterations, "01"),
        ),
        (
            "otel, sampled, with upstream CLIENT span",
            await case_stage(otel_stage(upstream_span=True), iterations, None),
        ),
        (
            "export thread, per span: SDK spans + OTLP encoding",
            await case_export_thread(iterations),
        ),
        (
            "SDK Tracer + IdGenerator, sampled (request path)",
            await case_sdk_tracer(iterations, 1.0),
        ),
        ("SDK Tracer + IdGenerator, not sampled", await case_sdk_tracer(iterations, 0.0)),
    ]
    print(f"{iterations} iterations per row; µs per request (export row: per span)\n")
    print("| case | CPU µs | wall µs |")
    print("|---|---:|---:|")
    for name, (cpu, wall) in rows:
        print(f"| {name} | {cpu:.2f} | {wall:.2f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=100_000)
    asyncio.run(main(parser.parse_args().iterations))
