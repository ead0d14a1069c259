"""The SDK's OTLP span exporter for the configured protocol (HTTP/protobuf or gRPC)."""

from __future__ import annotations

import importlib
import importlib.util
from urllib.parse import urlsplit

from opentelemetry.sdk.trace.export import SpanExporter

from kairos_otel.config import OtelConfig

TRACES_PATH = "/v1/traces"
GRPC_MODULE = "opentelemetry.exporter.otlp.proto.grpc"


def check_protocol(config: OtelConfig) -> None:
    """Raise ValueError when the chosen protocol's exporter is not installed."""
    if config.protocol == "grpc" and importlib.util.find_spec(GRPC_MODULE) is None:
        raise ValueError("protocol 'grpc' needs the gRPC exporter: pip install 'kairos-otel[grpc]'")


def traces_url(endpoint: str | None) -> str | None:
    """The OTLP/HTTP traces URL: `/v1/traces` is added to an endpoint that has no path."""
    if endpoint is None:
        return None
    parts = urlsplit(endpoint)
    if parts.path in ("", "/"):
        return parts._replace(path=TRACES_PATH).geturl()
    return endpoint


def make_exporter(config: OtelConfig) -> SpanExporter:
    """A new exporter (no connection is made until the first export)."""
    headers = {name: value.get_secret_value() for name, value in config.headers.items()}
    gzip = config.compression == "gzip"
    if config.protocol == "grpc":
        check_protocol(config)
        grpc_compression = importlib.import_module("grpc").Compression
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcSpanExporter,
        )

        endpoint = config.endpoint
        return GrpcSpanExporter(
            endpoint=endpoint,
            insecure=urlsplit(endpoint).scheme == "http" if endpoint else None,
            headers={name.lower(): value for name, value in headers.items()} or None,
            timeout=config.export_timeout,
            compression=grpc_compression.Gzip if gzip else grpc_compression.NoCompression,
        )
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(
        endpoint=traces_url(config.endpoint),
        headers=headers or None,
        timeout=config.export_timeout,
        compression=Compression.Gzip if gzip else Compression.NoCompression,
    )
