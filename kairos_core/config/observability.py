"""Config models for metrics, access logs, application logs and trace propagation."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ByteSize, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricsConfig(_Strict):
    """Prometheus metrics, counted in process and exported at scrape time."""

    enabled: bool = Field(
        True, description="Count requests per route (served on the admin `/metrics`)."
    )
    stage_sampling: int = Field(
        64,
        ge=0,
        description="Time the plugin stages of one request in every N (0 = never): "
        "`kairos_plugin_duration_seconds`.",
    )


class AccessLogConfig(_Strict):
    """One line per request, written through a buffer."""

    enabled: bool = Field(True, description="Write an access log line for every request.")
    destination: str = Field(
        "stdout", description="`stdout`, `stderr` or a file path (appended to; reopened on reload)."
    )
    format: Literal["json", "text"] = Field(
        "json", description="JSON lines, or a combined-style text line."
    )
    buffer_size: ByteSize = Field(
        ByteSize(64 * 1024), description="Lines are written when this much is buffered..."
    )
    flush_interval: float = Field(1.0, gt=0, description="...or after this many seconds.")


class LogConfig(_Strict):
    """Application (non-access) logs."""

    level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Lowest level written."
    )
    format: Literal["json", "text"] = Field(
        "text", description="Human text or JSON lines (same fields as access logs)."
    )


class TracingConfig(_Strict):
    """W3C Trace Context propagation."""

    enabled: bool = Field(
        True,
        description="Propagate `traceparent`/`tracestate` upstream (a new trace is started when the "
        "client sent none) and log the trace id.",
    )


class ObservabilityConfig(_Strict):
    """Metrics, logs and tracing."""

    metrics: MetricsConfig = Field(default_factory=MetricsConfig, description="Prometheus metrics.")
    access_log: AccessLogConfig = Field(
        default_factory=AccessLogConfig, description="Per-request log lines."
    )
    logs: LogConfig = Field(default_factory=LogConfig, description="Application logs.")
    tracing: TracingConfig = Field(
        default_factory=TracingConfig, description="Trace context propagation."
    )
