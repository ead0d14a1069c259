"""Config models for resilience: health checks, circuit breakers, retries, splits and mirrors."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ByteSize, ConfigDict, Field, field_validator, model_validator

Seconds = Annotated[float, Field(gt=0)]
_RANGE_RE = re.compile(r"^([1-5][0-9][0-9])(?:-([1-5][0-9][0-9]))?$")
IDEMPOTENT_METHODS = ("GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_statuses(values: list[Any]) -> frozenset[int]:
    """Expand `[200, "300-399"]` into a set of status codes."""
    out: set[int] = set()
    for value in values:
        text = str(value).strip()
        match = _RANGE_RE.match(text)
        if not match:
            raise ValueError(f"invalid status or range {value!r} (use 503 or '500-599')")
        low = int(match.group(1))
        high = int(match.group(2) or low)
        if high < low:
            raise ValueError(f"empty status range {value!r}")
        out.update(range(low, high + 1))
    return frozenset(out)


Statuses = Annotated[list[int | str], Field()]


class ActiveHealthCheck(_Strict):
    """Periodic probes of every backend of a pool."""

    path: str = Field("/health", description="Request path of the probe.")
    method: str = Field("GET", description="HTTP method of the probe.")
    interval: Seconds = Field(5.0, description="Seconds between probes of one backend.")
    timeout: Seconds = Field(2.0, description="A probe slower than this fails.")
    expected_statuses: Statuses = Field(
        default_factory=lambda: list[int | str](["200-399"]),
        description="Statuses that count as healthy.",
    )
    healthy_threshold: int = Field(2, ge=1, description="Successes in a row to become healthy.")
    unhealthy_threshold: int = Field(3, ge=1, description="Failures in a row to become unhealthy.")
    jitter: float = Field(0.2, ge=0, le=1, description="Random spread of the interval (fraction).")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra probe headers.")
    host_header: str | None = Field(
        None, description="Host header of the probe (default: the backend's)."
    )

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with '/'")
        return value

    @field_validator("expected_statuses")
    @classmethod
    def _statuses(cls, value: list[int | str]) -> list[int | str]:
        parse_statuses(value)
        return value


class PassiveHealthCheck(_Strict):
    """Marks a backend unhealthy after consecutive failures seen on real traffic."""

    enabled: bool = Field(True, description="Watch real traffic for failures.")
    max_failures: int = Field(5, ge=1, description="Consecutive failures that mark it unhealthy.")
    failure_statuses: Statuses = Field(
        default_factory=lambda: list[int | str]([502, 503, 504]),
        description="Response statuses that count as failures.",
    )
    cooldown: Seconds = Field(10.0, description="Seconds before an ejected backend is tried again.")

    @field_validator("failure_statuses")
    @classmethod
    def _statuses(cls, value: list[int | str]) -> list[int | str]:
        parse_statuses(value)
        return value


class HealthCheckConfig(_Strict):
    """Active and passive health checking of a pool."""

    active: ActiveHealthCheck | None = Field(None, description="Probes; off unless configured.")
    passive: PassiveHealthCheck = Field(
        default_factory=PassiveHealthCheck, description="Ejection on failures in real traffic."
    )


class CircuitBreakerConfig(_Strict):
    """A circuit breaker per backend: closed, open, half-open."""

    enabled: bool = Field(True, description="Use a circuit breaker per backend.")
    consecutive_failures: int = Field(
        5, ge=1, description="Trip after this many failures in a row."
    )
    error_rate: float | None = Field(
        None, gt=0, le=1, description="Also trip when the failure ratio over `window` reaches this."
    )
    window: Seconds = Field(10.0, description="Window of the error-rate rule.")
    min_requests: int = Field(
        20, ge=1, description="Requests needed in the window before the rate applies."
    )
    open_duration: Seconds = Field(5.0, description="How long a tripped circuit stays open.")
    max_open_duration: Seconds = Field(120.0, description="Cap of the growing open duration.")
    backoff_multiplier: float = Field(
        2.0, ge=1, description="Open duration growth on each re-trip."
    )
    half_open_requests: int = Field(
        1, ge=1, description="Concurrent trial requests when half-open."
    )
    failure_statuses: Statuses = Field(
        default_factory=lambda: list[int | str](["500-599"]),
        description="Statuses that count as failures.",
    )
    count_timeouts: bool = Field(True, description="Timeouts count as failures.")
    count_connect_errors: bool = Field(True, description="Connection errors count as failures.")

    @field_validator("failure_statuses")
    @classmethod
    def _statuses(cls, value: list[int | str]) -> list[int | str]:
        parse_statuses(value)
        return value


class BackoffConfig(_Strict):
    """Exponential backoff with full jitter between attempts."""

    initial: Seconds = Field(0.05, description="Base delay of the first retry.")
    max: Seconds = Field(2.0, description="Largest delay.")
    multiplier: float = Field(2.0, ge=1, description="Growth of the delay per attempt.")


class RetryBudgetConfig(_Strict):
    """Caps retries at a share of requests, so failures cannot snowball into retry storms."""

    ratio: float = Field(
        0.2, ge=0, le=10, description="Retries allowed per request over the window."
    )
    window: Seconds = Field(10.0, description="Seconds over which retries are counted.")
    min_retries: int = Field(10, ge=0, description="Retries always allowed per window.")


class RetryConfig(_Strict):
    """Retry policy of a route."""

    max_retries: int = Field(2, ge=0, description="Retries after the first attempt.")
    backoff: BackoffConfig = Field(
        default_factory=BackoffConfig, description="Delay between attempts."
    )
    on_statuses: Statuses = Field(
        default_factory=lambda: list[int | str]([502, 503, 504]),
        description="Response statuses worth another try.",
    )
    on_connect_error: bool = Field(True, description="Retry when the connection could not be made.")
    on_timeout: bool = Field(True, description="Retry when the backend did not answer in time.")
    on_reset: bool = Field(True, description="Retry when the backend dropped the connection.")
    deadline: Seconds | None = Field(None, description="Overall time for all attempts together.")
    idempotent_methods: list[str] = Field(
        default_factory=lambda: list(IDEMPOTENT_METHODS),
        description="Methods safe to resend; remove one to mark it unsafe on this route.",
    )
    retry_non_idempotent: bool = Field(
        False,
        description="Resend non-idempotent requests even when bytes may have reached a backend.",
    )
    replay_buffer: ByteSize = Field(
        ByteSize(64 * 1024),
        description="Bodies up to this size are buffered so they can be resent.",
    )
    budget: RetryBudgetConfig = Field(
        default_factory=RetryBudgetConfig, description="Limit on retries across requests."
    )

    @field_validator("on_statuses")
    @classmethod
    def _statuses(cls, value: list[int | str]) -> list[int | str]:
        parse_statuses(value)
        return value


class SplitRule(_Strict):
    """Send part of a route's traffic to another upstream pool."""

    upstream: str = Field(description="Name of the pool receiving this share.")
    weight: float = Field(
        0, ge=0, le=100, description="Percent of requests (when no match is set)."
    )
    header: dict[str, str] = Field(
        default_factory=dict, description="Requests with these header values."
    )
    cookie: dict[str, str] = Field(
        default_factory=dict, description="Requests with these cookie values."
    )

    @model_validator(mode="after")
    def _some_rule(self) -> SplitRule:
        if not (self.weight or self.header or self.cookie):
            raise ValueError("give a weight, a header match or a cookie match")
        return self


class MirrorConfig(_Strict):
    """Copy requests to a shadow pool without waiting for it or using its answer."""

    upstream: str = Field(description="Name of the shadow pool.")
    percent: float = Field(100, gt=0, le=100, description="Percent of requests mirrored.")
    max_body_size: ByteSize = Field(
        ByteSize(1024 * 1024), description="Requests with larger bodies are not mirrored."
    )
    timeout: Seconds = Field(5.0, description="Seconds a mirrored request may take.")
