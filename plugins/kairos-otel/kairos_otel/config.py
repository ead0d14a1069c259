"""Settings of the `otel` plugin: where spans go, what they carry, how many are kept."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

Protocol = Literal["http/protobuf", "grpc"]
AttributeValue = str | bool | int | float


class OtelConfig(BaseModel):
    """Settings of the `otel` plugin (one span per request, exported over OTLP)."""

    model_config = ConfigDict(extra="forbid")

    endpoint: str | None = Field(
        None,
        description="Collector URL. HTTP: `http(s)://host:4318` (`/v1/traces` is added when the "
        "URL has no path) or a full traces URL; gRPC: `http(s)://host:4317`. Unset: the "
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT variables, else "
        "localhost.",
    )
    protocol: Protocol = Field(
        "http/protobuf",
        description="`http/protobuf` (default) or `grpc` (needs `pip install kairos-otel[grpc]`).",
    )
    headers: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Headers (gRPC: metadata) sent with every export, e.g. an API key; take "
        "secret values from the environment with `${VAR}`. Never shown by the admin API.",
    )
    compression: Literal["none", "gzip"] = Field(
        "none", description="Compress export requests (`gzip`) or not."
    )
    service_name: str | None = Field(
        None,
        description="The `service.name` resource attribute; unset: OTEL_SERVICE_NAME, else "
        "`kairos`.",
    )
    resource_attributes: dict[str, AttributeValue] = Field(
        default_factory=dict,
        description="More resource attributes (e.g. `deployment.environment.name`); they win "
        "over OTEL_RESOURCE_ATTRIBUTES.",
    )
    sample_ratio: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="Share of new traces recorded (0 to 1), decided from the trace id like the "
        "SDK's TraceIdRatioBased sampler.",
    )
    parent_based: bool = Field(
        True,
        description="When the client sent a `traceparent`, follow its sampled flag instead of "
        "`sample_ratio` (the SDK's ParentBased sampler).",
    )
    upstream_span: bool = Field(
        False,
        description="Also record a CLIENT span for the upstream call (child of the request's "
        "span); the `traceparent` sent upstream then names that span.",
    )
    max_queue_size: int = Field(
        2048,
        ge=1,
        description="Finished spans waiting for export; when full, new spans are dropped "
        "(and counted).",
    )
    max_export_batch_size: int = Field(
        512, ge=1, description="Most spans sent in one export request."
    )
    schedule_delay: float = Field(
        1.0,
        gt=0,
        description="Seconds between exports when fewer than a batch of spans wait.",
    )
    export_timeout: float = Field(
        10.0,
        gt=0,
        description="Seconds one export (with its retries) may take; also bounds the final "
        "flush at shutdown.",
    )

    @field_validator("endpoint")
    @classmethod
    def _endpoint_is_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        return value

    @field_validator("headers")
    @classmethod
    def _header_names(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name in value:
            if not name or not all(33 <= ord(c) < 127 and c != ":" for c in name):
                raise ValueError(f"invalid header name {name!r}")
        return value

    @model_validator(mode="after")
    def _batch_fits_queue(self) -> OtelConfig:
        if self.max_export_batch_size > self.max_queue_size:
            raise ValueError(
                f"max_export_batch_size ({self.max_export_batch_size}) must not exceed "
                f"max_queue_size ({self.max_queue_size})"
            )
        return self

    def export_key(self) -> tuple[object, ...]:
        """What identifies one export pipeline (entries with equal keys share it)."""
        return (
            self.endpoint,
            self.protocol,
            tuple(sorted((k, v.get_secret_value()) for k, v in self.headers.items())),
            self.compression,
            self.service_name,
            tuple(sorted(self.resource_attributes.items())),
            self.max_queue_size,
            self.max_export_batch_size,
            self.schedule_delay,
            self.export_timeout,
        )
