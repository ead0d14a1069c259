"""What the request path queues for one sampled request, and its conversion to SDK spans.

The request path only copies a few references into a `SpanRecord` (a tuple); building the
SDK's `ReadableSpan` objects (id parsing, attribute dicts, semantic-convention details) happens
in the export thread, just before the batch is encoded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

if TYPE_CHECKING:
    from aiohttp import HttpVersion
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.util.types import AttributeValue

    from kairos_core import Backend

KNOWN_METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY")
)
SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_UNSET = Status(StatusCode.UNSET)
_ERROR = Status(StatusCode.ERROR)


class SpanRecord(NamedTuple):
    """One finished, sampled request: raw values copied on the event loop, no formatting."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    tracestate: str | None
    start_ns: int
    end_ns: int
    method: str
    raw_path: str
    version: HttpVersion
    route: str
    status: int
    host: str
    client_ip: str
    scheme: str
    user_agent: str | None
    backend: Backend | None
    retries: int
    consumer: str | None
    request_id: str
    error_type: str | None
    client_span_id: str | None
    returned_ns: int
    """Wall-clock ns when the rest of the chain returned (end of the CLIENT span)."""
    upstream_seconds: float
    upstream_path: str


def to_spans(
    record: SpanRecord, resource: Resource, scope: InstrumentationScope
) -> list[ReadableSpan]:
    """The SERVER span of a record, plus its CLIENT span when one was asked for."""
    trace_id = int(record.trace_id, 16)
    state = TraceState.from_header([record.tracestate]) if record.tracestate else None
    context = SpanContext(trace_id, int(record.span_id, 16), False, SAMPLED, state)
    parent = None
    if record.parent_span_id is not None:
        parent = SpanContext(trace_id, int(record.parent_span_id, 16), True, SAMPLED, state)
    method = record.method if record.method in KNOWN_METHODS else "_OTHER"
    attributes = _server_attributes(record, method)
    failed = record.status >= 500 or record.error_type is not None
    if failed:
        attributes["error.type"] = record.error_type or str(record.status)
    name = f"{method if method != '_OTHER' else 'HTTP'} {record.route}"
    spans = [
        ReadableSpan(
            name,
            context,
            parent,
            resource,
            attributes,
            kind=SpanKind.SERVER,
            status=_ERROR if failed else _UNSET,
            start_time=record.start_ns,
            end_time=record.end_ns,
            instrumentation_scope=scope,
        )
    ]
    backend = record.backend
    if record.client_span_id is not None and backend is not None:
        spans.append(_client_span(record, backend, method, context, resource, scope))
    return spans


def _server_attributes(record: SpanRecord, method: str) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {
        "http.request.method": method,
        "url.path": record.raw_path.partition("?")[0],
        "url.scheme": record.scheme,
        "http.route": record.route,
        "client.address": record.client_ip,
        "network.protocol.version": f"{record.version.major}.{record.version.minor}",
        "kairos.request_id": record.request_id,
        "kairos.retries": record.retries,
    }
    if method == "_OTHER":
        attributes["http.request.method_original"] = record.method
    if record.status:
        attributes["http.response.status_code"] = record.status
    host, port = split_host(record.host)
    if host:
        attributes["server.address"] = host
        if port is not None:
            attributes["server.port"] = port
    if record.user_agent is not None:
        attributes["user_agent.original"] = record.user_agent
    if record.backend is not None:
        attributes["kairos.upstream"] = record.backend.pool_name
        attributes["kairos.backend"] = record.backend.name
    if record.consumer is not None:
        attributes["kairos.consumer"] = record.consumer
    return attributes


def _client_span(
    record: SpanRecord,
    backend: Backend,
    method: str,
    server: SpanContext,
    resource: Resource,
    scope: InstrumentationScope,
) -> ReadableSpan:
    assert record.client_span_id is not None
    context = SpanContext(server.trace_id, int(record.client_span_id, 16), False, SAMPLED)
    attributes: dict[str, AttributeValue] = {
        "http.request.method": method,
        "server.address": backend.host,
        "server.port": backend.port,
        "url.full": backend.url + record.upstream_path,
        "kairos.upstream": backend.pool_name,
        "kairos.backend": backend.name,
    }
    if record.retries:
        attributes["http.request.resend_count"] = record.retries
    if record.status:
        attributes["http.response.status_code"] = record.status
    failed = record.status >= 400 or record.error_type is not None
    if failed:
        attributes["error.type"] = record.error_type or str(record.status)
    end = record.returned_ns
    return ReadableSpan(
        method if method != "_OTHER" else "HTTP",
        context,
        server,
        resource,
        attributes,
        kind=SpanKind.CLIENT,
        status=_ERROR if failed else _UNSET,
        start_time=end - int(record.upstream_seconds * 1e9),
        end_time=end,
        instrumentation_scope=scope,
    )


def split_host(host_header: str) -> tuple[str, int | None]:
    """(host, port or None) from a Host header value; IPv6 literals lose their brackets."""
    if host_header.startswith("["):
        end = host_header.find("]")
        if end < 0:
            return host_header, None
        host, rest = host_header[1:end], host_header[end + 1 :]
    else:
        host, _, port_text = host_header.partition(":")
        rest = ":" + port_text if port_text else ""
    if rest.startswith(":") and rest[1:].isdigit():
        return host, int(rest[1:])
    return host, None
