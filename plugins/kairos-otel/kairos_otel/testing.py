"""Test aids: a real OTLP/HTTP receiver (aiohttp, protobuf bodies) that decodes what it gets.

`async with start_receiver() as receiver:` serves POST /v1/traces on a free loopback port;
`await receiver.wait_for(n)` returns the decoded spans once `n` arrived.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from kairos_core.testing import start_backend


def value_of(value: AnyValue) -> Any:
    """The Python value inside an OTLP AnyValue."""
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


@dataclass
class ExportedSpan:
    """One span as the receiver decoded it, with its resource and scope."""

    span: Span
    resource: dict[str, Any]
    scope: str
    scope_version: str

    @property
    def trace_id(self) -> str:
        """Hex trace id."""
        return self.span.trace_id.hex()

    @property
    def span_id(self) -> str:
        """Hex span id."""
        return self.span.span_id.hex()

    @property
    def parent_span_id(self) -> str:
        """Hex parent span id ('' for a root span)."""
        return self.span.parent_span_id.hex()

    @property
    def attributes(self) -> dict[str, Any]:
        """Span attributes as a plain dict."""
        return {kv.key: value_of(kv.value) for kv in self.span.attributes}


@dataclass
class OtlpReceiver:
    """What a collector received: decoded export requests and their HTTP headers."""

    url: str = ""
    requests: list[ExportTraceServiceRequest] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    spans: list[ExportedSpan] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, request: ExportTraceServiceRequest, headers: dict[str, str]) -> None:
        """Record one export request."""
        self.requests.append(request)
        self.headers.append(headers)
        for resource_spans in request.resource_spans:
            resource = {kv.key: value_of(kv.value) for kv in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        ExportedSpan(
                            span, resource, scope_spans.scope.name, scope_spans.scope.version
                        )
                    )
        self.changed.set()

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[ExportedSpan]:
        """Wait until at least `count` spans arrived; return them all."""
        async with asyncio.timeout(timeout):
            while len(self.spans) < count:
                self.changed.clear()
                await self.changed.wait()
        return self.spans

    def by_trace(self, trace_id: str) -> list[ExportedSpan]:
        """The spans of one trace."""
        return [s for s in self.spans if s.trace_id == trace_id]


def receiver_app(receiver: OtlpReceiver) -> web.Application:
    """An OTLP/HTTP traces endpoint: POST /v1/traces with a protobuf (optionally gzip) body."""

    async def traces(request: web.Request) -> web.Response:
        if request.content_type != "application/x-protobuf":
            return web.Response(status=415)
        body = await request.read()  # aiohttp undoes a gzip Content-Encoding
        message = ExportTraceServiceRequest()
        message.ParseFromString(body)
        receiver.add(message, dict(request.headers))
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )

    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    return app


@asynccontextmanager
async def start_receiver(
    port: int = 0, receiver: OtlpReceiver | None = None
) -> AsyncIterator[OtlpReceiver]:
    """Serve an OTLP/HTTP receiver on 127.0.0.1 (a free port by default) for the block."""
    receiver = receiver or OtlpReceiver()
    async with start_backend(receiver_app(receiver), port=port) as backend:
        receiver.url = backend.url
        yield receiver


def free_port() -> int:
    """A loopback TCP port nothing listens on (free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def parse_traceparent(value: str) -> tuple[str, str, str]:
    """(trace id, span id, flags) of a `traceparent` value."""
    version, trace_id, span_id, flags = value.split("-")
    if version != "00" or len(trace_id) != 32 or len(span_id) != 16 or len(flags) != 2:
        raise ValueError(f"not a version-00 traceparent: {value!r}")
    return trace_id, span_id, flags
