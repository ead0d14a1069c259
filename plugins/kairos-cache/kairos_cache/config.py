"""The `cache` component's settings (one pydantic model, unknown fields are errors)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ByteSize, ConfigDict, Field, field_validator, model_validator

Seconds = Annotated[float, Field(ge=0)]

# RFC 9110 15.1: statuses that are heuristically cacheable (206 is left out: no range support).
DEFAULT_STATUSES = [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MemoryBackend(_Strict):
    """The in-process LRU store."""

    max_bytes: ByteSize = Field(
        ByteSize(64 * 1024 * 1024),
        description="Bytes of responses (bodies, headers, bookkeeping) kept per cache entry; "
        "least recently used ones are evicted beyond it.",
    )

    @field_validator("max_bytes")
    @classmethod
    def _positive(cls, value: ByteSize) -> ByteSize:
        if value <= 0:
            raise ValueError("must be more than 0 bytes")
        return value


class RedisBackend(_Strict):
    """The Redis store, shared by every worker and machine using the same server and namespace."""

    url: str = Field(
        "redis://127.0.0.1:6379/0", description="`redis://`, `rediss://` or `unix://` URL."
    )
    namespace: str = Field("kairos:cache:", description="Prefix of every key the cache writes.")
    compress: bool = Field(
        False, description="zlib-compress entries of at least `compress_min_size`."
    )
    compress_min_size: ByteSize = Field(
        ByteSize(1024), description="Smaller entries are stored as is."
    )
    compress_level: int = Field(6, ge=1, le=9)
    timeout: float = Field(0.25, gt=0, description="Connect and reply timeout per Redis call (s).")
    retry_after: float = Field(
        2.0,
        gt=0,
        description="After a failure, bypass the cache this long before trying Redis again.",
    )

    local_ttl: float = Field(
        0.0,
        ge=0,
        description="Keep entries read from or written to Redis in each worker's memory for up "
        "to this long (0 = off): hits skip the Redis round trip; updates and purges from other "
        "gateways are seen after at most this delay.",
    )
    local_max_bytes: ByteSize = Field(
        ByteSize(16 * 1024 * 1024), description="Bound of that per-worker tier."
    )

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("expected a URL starting with redis://, rediss:// or unix://")
        return value


class KeyConfig(_Strict):
    """What distinguishes two cached responses of one route besides the path."""

    query: Literal["all", "none"] | list[str] = Field(
        "all",
        description="`all` (the query string as received), `none`, or a list of parameter names "
        "(only those, sorted).",
    )
    headers: list[str] = Field(
        default_factory=list, description="Request headers whose values are part of the key."
    )
    host: bool = Field(True, description="Include the Host header (lower-cased).")


class CacheConfig(_Strict):
    """Settings of one `cache` entry (global, or per route)."""

    backend: Literal["memory", "redis"] = "memory"
    memory: MemoryBackend = Field(default_factory=MemoryBackend)
    redis: RedisBackend = Field(default_factory=RedisBackend)
    default_ttl: Seconds = Field(
        0.0, description="Freshness when the backend sends no max-age, s-maxage or Expires."
    )
    force_ttl: Annotated[float, Field(gt=0)] | None = Field(
        None, description="Freshness for every storable response, whatever the backend says."
    )
    stale_while_revalidate: Seconds = Field(
        0.0, description="Used when the response has no stale-while-revalidate directive."
    )
    stale_if_error: Seconds = Field(
        0.0, description="Used when the response has no stale-if-error directive."
    )
    revalidate_window: Seconds = Field(
        600.0,
        description="How long an expired entry with an ETag or Last-Modified is kept for "
        "conditional revalidation.",
    )
    max_object_size: ByteSize = Field(
        ByteSize(1024 * 1024),
        description="Larger responses stream through uncached (never buffered).",
    )
    statuses: list[int] = Field(
        default_factory=lambda: list(DEFAULT_STATUSES),
        description="Response statuses that may be stored.",
    )
    key: KeyConfig = Field(default_factory=KeyConfig)
    allow_credentials: bool = Field(
        False,
        description="Cache requests carrying Authorization or Cookie; the key then includes the "
        "authenticated consumer (requests without one are not cached).",
    )
    request_directives: bool = Field(
        True,
        description="Honour the client's Cache-Control (no-cache, max-age, no-store, only-if-cached).",
    )
    invalidate_on_unsafe: bool = Field(
        True,
        description="A successful POST, PUT, PATCH or DELETE drops the cached entry of its URL.",
    )
    coalesce: bool = Field(
        True, description="Concurrent misses for one key make one backend request."
    )
    expose_key: bool = Field(
        False, description="Add `X-Cache-Key` to responses (for purging by key)."
    )

    @field_validator("statuses")
    @classmethod
    def _statuses(cls, value: list[int]) -> list[int]:
        bad = [s for s in value if not 200 <= s <= 599 or s in (206, 304)]
        if bad:
            raise ValueError(
                f"cannot store status(es) {bad}: use final statuses 200-599 except 206 and 304"
            )
        return value

    @model_validator(mode="after")
    def _fits(self) -> CacheConfig:
        if self.backend == "memory" and self.max_object_size > self.memory.max_bytes:
            raise ValueError(
                f"max_object_size ({self.max_object_size}) exceeds memory.max_bytes "
                f"({self.memory.max_bytes}): no large object could be kept"
            )
        return self
