"""Settings of the `rate-limit` components: limits, keys, backend, headers and failure policy."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, model_validator

Algorithm = Literal[
    "token_bucket",
    "fixed_window",
    "sliding_window_log",
    "sliding_window_counter",
    "gcra",
    "concurrency",
]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d*(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_KEY_PART_RE = re.compile(r"^(ip|consumer|route|header:[!#$%&'*+.^_`|~0-9A-Za-z-]+|claim:[^\s]+)$")


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string such as `500ms`, `1s`, `2m`, `1h`, `1d`."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        found = _DURATION_RE.match(value)
        if found:
            return float(found.group(1)) * _UNITS[found.group(2) or "s"]
    raise ValueError(f"not a duration: {value!r} (use seconds or e.g. '500ms', '1s', '1m', '1h')")


Duration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]


class LimitSpec(BaseModel):
    """One limit: an algorithm, its quota per window (or in-flight cap) and what it counts by."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    algorithm: Algorithm = Field("token_bucket", description="How requests are counted.")
    rate: str | None = Field(
        None, description="Shorthand for `limit` per `window`, e.g. `10/s`, `1000/h`, `5/10s`."
    )
    limit: int | None = Field(
        None, gt=0, description="Requests per window; for `concurrency`, requests in flight."
    )
    window: Duration | None = Field(None, description="The window (seconds or `1s`, `1m`...).")
    burst: int | None = Field(
        None,
        gt=0,
        description="token_bucket/gcra: requests allowed at once (bucket size); default `limit`.",
    )
    key: list[str] | None = Field(
        None, description="What to count by; defaults to the component's `key`."
    )
    name: str | None = Field(
        None, description="Policy name in headers and metrics; default e.g. `10-per-1s`."
    )
    cost: int = Field(1, ge=1, description="Units one request uses.")
    lease: Duration = Field(
        300.0,
        description="concurrency, Redis: a slot not released by then (gateway died) frees itself.",
    )

    @model_validator(mode="after")
    def _complete(self) -> LimitSpec:
        if self.rate is not None:
            if self.limit is not None or self.window is not None:
                raise ValueError("give either `rate` or `limit` and `window`, not both")
            found = _RATE_RE.match(self.rate)
            if not found or int(found.group(1)) <= 0:
                raise ValueError(f"`rate` must look like '10/s' or '100/5m', got {self.rate!r}")
            count = float(found.group(2)) if found.group(2) else 1.0
            object.__setattr__(self, "limit", int(found.group(1)))
            object.__setattr__(self, "window", count * _UNITS[found.group(3)])
            object.__setattr__(self, "rate", None)
        if self.limit is None:
            raise ValueError("`limit` (or `rate`) is required")
        if self.algorithm == "concurrency":
            if self.window is not None or self.burst is not None:
                raise ValueError("a concurrency limit takes only `limit` (requests in flight)")
        elif self.window is None:
            raise ValueError(f"{self.algorithm} needs a `window` (or `rate`)")
        elif self.window < 0.001:
            raise ValueError("`window` must be at least 1ms")
        if self.burst is not None and self.algorithm not in ("token_bucket", "gcra"):
            raise ValueError("`burst` applies to token_bucket and gcra only")
        if self.cost > (self.burst or self.limit):
            raise ValueError("`cost` is larger than the limit: every request would be refused")
        return self

    @property
    def quota(self) -> int:
        """The limit as a number (validated to be set)."""
        assert self.limit is not None
        return self.limit

    @property
    def capacity(self) -> int:
        """Requests allowed at once: the burst for bucket algorithms, else the limit."""
        return self.burst or self.quota

    @property
    def window_us(self) -> int:
        """The window in microseconds (0 for concurrency)."""
        return round((self.window or 0.0) * 1_000_000)

    def display_name(self) -> str:
        """The configured name or one derived from the numbers (`10-per-1s`, `5-in-flight`)."""
        if self.name:
            return self.name
        if self.algorithm == "concurrency":
            return f"{self.quota}-in-flight"
        return f"{self.quota}-per-{format_duration(self.window or 0.0)}"


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of a duration: `1s`, `90s`, `1h`, `250ms`."""
    for unit in ("d", "h", "m", "s"):
        count = seconds / _UNITS[unit]
        if count >= 1 and count == int(count):
            return f"{int(count)}{unit}"
    ms = seconds * 1000
    return f"{int(ms)}ms" if ms == int(ms) else f"{seconds:g}s"


class RedisSettings(BaseModel):
    """Where the Redis backend connects and how it behaves when Redis misbehaves."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="redis://, rediss:// (TLS) or unix:// URL; may carry user and password.",
    )
    cluster: bool = Field(False, description="Connect to a Redis Cluster (url names any node).")
    password: SecretStr | None = Field(None, description="Password (overrides the URL's).")
    username: str | None = Field(None, description="ACL user name (overrides the URL's).")
    tls: bool = Field(False, description="Use TLS even with a redis:// URL.")
    tls_ca_file: str | None = Field(None, description="PEM CA bundle to verify the server.")
    tls_cert_file: str | None = Field(None, description="Client certificate (mutual TLS).")
    tls_key_file: str | None = Field(None, description="Client private key (mutual TLS).")
    tls_verify: bool = Field(True, description="Verify the server certificate.")
    key_prefix: str = Field("kairos:rl:", description="Prefix of every key the plugin writes.")
    max_connections: int = Field(4, ge=1, le=64, description="Connections per Redis node.")
    timeout: Duration = Field(0.1, description="How long a check may wait for Redis.")
    retry_interval: Duration = Field(
        1.0, description="After a failure, how long to apply `on_error` before trying again."
    )
    max_batch: int = Field(256, ge=1, description="Most checks sent in one pipelined write.")


class HeadersSettings(BaseModel):
    """Which rate-limit headers responses carry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    style: Literal["ietf", "classic", "both", "none"] = Field(
        "both",
        description="`ietf`: RateLimit-Policy and RateLimit; `classic`: X-RateLimit-*; or both.",
    )
    on_allowed: bool = Field(
        True, description="Also send the remaining budget on allowed responses."
    )


KeyPart = Annotated[str, Field(pattern=_KEY_PART_RE.pattern)]


class RateLimitConfig(BaseModel):
    """Settings of `rate-limit` and `rate-limit-pre-auth`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    limits: list[LimitSpec] = Field(min_length=1, description="Every limit must pass.")
    key: list[KeyPart] = Field(
        default_factory=lambda: ["ip"],
        description="Default key parts: ip, consumer, route, header:NAME, claim:PATH; [] = one shared budget.",
    )
    on_missing_key: Literal["reject", "skip"] = Field(
        "reject",
        description="A key part is absent (no header, no consumer): refuse (400) or skip that limit.",
    )
    backend: Literal["memory", "redis"] = Field("memory", description="Where counters live.")
    share_across_workers: bool = Field(
        True, description="memory: one limit for all `--workers` (shared memory), else per worker."
    )
    max_keys: int = Field(
        100_000, ge=16, description="memory: most keys tracked per limit (oldest evicted)."
    )
    redis: RedisSettings = Field(default_factory=RedisSettings)
    on_error: Literal["allow", "deny"] = Field(
        "allow", description="Backend unreachable or slow: let requests through or refuse (503)."
    )
    namespace: str | None = Field(
        None, description="Share counters with other entries using the same namespace."
    )
    headers: HeadersSettings = Field(default_factory=HeadersSettings)
    status: int = Field(429, ge=400, le=599, description="Status of a refused request.")
    message: str = Field("rate limit exceeded", description="Message in the JSON error body.")

    @model_validator(mode="after")
    def _check_keys(self) -> RateLimitConfig:
        for index, limit in enumerate(self.limits):
            for part in limit.key or ():
                if not _KEY_PART_RE.match(part):
                    raise ValueError(f"limits[{index}].key: unknown key part {part!r}")
        names = [limit.display_name() for limit in self.limits]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"two limits share the name {duplicates[0]!r}; set `name` on one")
        return self
