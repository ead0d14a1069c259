"""kairos-otel: one OpenTelemetry SERVER span per request, exported over OTLP in batches."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from kairos_core import BuildContext, Phase, StagePlugin, hookimpl
from kairos_otel.config import OtelConfig
from kairos_otel.exporters import check_protocol, make_exporter
from kairos_otel.pipeline import SpanPipeline
from kairos_otel.stage import TracingStage

__all__ = ["OtelConfig", "SpanPipeline", "TracingStage", "build"]

SHARED_KEY = "otel"

try:
    __version__ = version("kairos-otel")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"


def build(config: OtelConfig, context: BuildContext) -> TracingStage:
    """One stage; entries with the same export settings share one queue and exporter."""
    services = context.services
    if not services.config.observability.tracing.enabled:
        raise ValueError(
            "the otel plugin needs trace propagation: set observability.tracing.enabled: true"
        )
    check_protocol(config)
    pipelines: dict[tuple[object, ...], SpanPipeline] = services.shared.setdefault(SHARED_KEY, {})
    key = config.export_key()
    pipeline = pipelines.get(key)
    if pipeline is None:
        pipeline = SpanPipeline(config, services, make_exporter, __version__)
        pipelines[key] = pipeline
    return TracingStage(config, pipeline)


@hookimpl
def register_loggers(register: Callable[[StagePlugin[Any]], None]) -> None:
    """Register the `otel` stage (phase LOG: outermost, sees every final response)."""
    register(
        StagePlugin(
            name="otel",
            build=build,
            config_model=OtelConfig,
            phase=Phase.LOG,
            priority=100,
            description="Export one OpenTelemetry span per request over OTLP (HTTP or gRPC).",
        )
    )
