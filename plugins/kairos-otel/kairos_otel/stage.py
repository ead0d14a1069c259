"""The per-request stage: decide sampling, keep the ids the core chose, queue the finished span."""

from __future__ import annotations

from functools import partial
from random import getrandbits
from time import monotonic, time_ns

from kairos_core import Handler, RequestContext, Response
from kairos_otel.config import OtelConfig
from kairos_otel.pipeline import SpanPipeline
from kairos_otel.records import SpanRecord

_FLAGS_AT = 53
"""Offset of the trace-flags field in `00-<32 hex>-<16 hex>-<2 hex>`."""
_SAMPLED_DIGITS = frozenset("13579bdf")
"""Last hex digit of trace-flags values whose sampled bit is set."""
_TOGGLE_SAMPLED = {d: f"{int(d, 16) ^ 1:x}" for d in "0123456789abcdef"}
"""The last hex digit of trace-flags with the sampled bit flipped."""
_ID_LIMIT = 1 << 64


class TracingStage:
    """Records one SERVER span per sampled request with exactly the core's trace and span ids."""

    __slots__ = ("_bound", "_client_span", "_enqueue", "_parent_based", "pipeline")

    def __init__(self, config: OtelConfig, pipeline: SpanPipeline) -> None:
        self.pipeline = pipeline
        self._enqueue = pipeline.enqueue
        self._parent_based = config.parent_based
        self._client_span = config.upstream_span
        # TraceIdRatioBased: sampled when the trace id's low 64 bits are below the bound.
        self._bound = round(config.sample_ratio * _ID_LIMIT)

    async def start(self) -> None:
        """Start the shared export pipeline."""
        await self.pipeline.start()

    async def close(self) -> None:
        """Release the shared export pipeline (the last user flushes it)."""
        await self.pipeline.close()

    async def __call__(self, ctx: RequestContext, call_next: Handler) -> Response:
        """Sample, then (when sampled) queue the span once the request is over."""
        trace_id = ctx.trace_id
        if trace_id is None:  # the core's trace propagation is switched off
            return await call_next(ctx)
        if self._parent_based and ctx.parent_span_id is not None:
            traceparent = ctx.headers["traceparent"]
            if traceparent[-1] not in _SAMPLED_DIGITS:
                return await call_next(ctx)
        else:
            traceparent = ctx.headers["traceparent"]
            bound = self._bound
            sampled = bound >= _ID_LIMIT or (bound > 0 and int(trace_id[16:], 16) < bound)
            if (traceparent[-1] in _SAMPLED_DIGITS) is not sampled:
                # tell the upstream this gateway's decision (the core copied the client's flag)
                traceparent = traceparent[:-1] + _TOGGLE_SAMPLED[traceparent[-1]]
                ctx.headers["traceparent"] = traceparent
            if not sampled:
                return await call_next(ctx)
        client_span_id = None
        if self._client_span:
            client_span_id = f"{getrandbits(64) or 1:016x}"
            flags = traceparent[_FLAGS_AT:]
            ctx.headers["traceparent"] = f"00-{trace_id}-{client_span_id}-{flags}"
        try:
            response = await call_next(ctx)
        except BaseException as exc:
            status = 500 if isinstance(exc, Exception) else 0
            ctx.add_cleanup(
                partial(
                    self._finish, ctx, status, type(exc).__qualname__, client_span_id, monotonic()
                )
            )
            raise
        returned = monotonic() if client_span_id is not None else 0.0
        ctx.add_cleanup(partial(self._finish, ctx, response.status, None, client_span_id, returned))
        return response

    def _finish(
        self,
        ctx: RequestContext,
        status: int,
        error_type: str | None,
        client_span_id: str | None,
        returned: float,
    ) -> None:
        """Queue the span (a cleanup: runs after the response was sent, however it ended)."""
        now = monotonic()
        end_ns = time_ns()
        request = ctx.request
        headers = request.headers
        consumer = ctx.consumer
        parent = ctx.parent_span_id
        self._enqueue(
            SpanRecord(
                ctx.trace_id or "",
                ctx.span_id or "",
                parent,
                headers.get("tracestate") if parent is not None else None,
                end_ns - int((now - ctx.started) * 1e9),
                end_ns,
                request.method,
                request.raw_path,
                request.version,
                ctx.route.name,
                status,
                ctx.host,
                ctx.client_ip,
                ctx.scheme,
                headers.get("User-Agent"),
                ctx.backend,
                ctx.retries,
                consumer.name if consumer is not None else None,
                ctx.request_id,
                error_type,
                client_span_id,
                end_ns - int((now - returned) * 1e9) if client_span_id is not None else 0,
                ctx.upstream_seconds,
                ctx.upstream_path,
            )
        )
