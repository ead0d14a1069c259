"""Settings of the `dns` listener and the `doh` stage (pydantic, unknown fields are errors)."""

from __future__ import annotations

from typing import Any

import dns.exception
import dns.name
import dns.rdatatype
from pydantic import BaseModel, ByteSize, ConfigDict, Field, field_validator, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CacheSettings(_Strict):
    """The answer cache of one resolver (one per worker process)."""

    enabled: bool = Field(True, description="Answer repeated questions from memory.")
    max_entries: int = Field(10_000, ge=1, description="Most answers kept; least recent go first.")
    max_bytes: ByteSize = Field(
        ByteSize(32 * 1024 * 1024), description="Most bytes of answers kept (wire size)."
    )
    min_ttl: int = Field(0, ge=0, description="Record TTLs below this are raised to it (seconds).")
    max_ttl: int = Field(
        86_400, ge=1, description="Record TTLs above this are lowered to it (seconds)."
    )
    max_negative_ttl: int = Field(
        3_600,
        ge=0,
        description="Cap of the RFC 2308 negative TTL (NXDOMAIN / no data); 0 caches none.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> CacheSettings:
        if self.min_ttl > self.max_ttl:
            raise ValueError(f"min_ttl ({self.min_ttl}) is above max_ttl ({self.max_ttl})")
        return self


class HealthQuery(_Strict):
    """The DNS question active health checks ask each backend (`health_check.active`)."""

    name: str = Field(".", description="Name asked for.")
    type: str = Field("NS", description="Record type asked for.")

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return absolute_name(value)

    @field_validator("type")
    @classmethod
    def _valid_type(cls, value: str) -> str:
        try:
            dns.rdatatype.from_text(value)
        except dns.rdatatype.UnknownRdatatype:
            raise ValueError(f"unknown record type {value!r}") from None
        return value.upper()


class ResolverSettings(_Strict):
    """Where questions go and how answers are cached; shared by a listener and DoH routes."""

    zones: dict[str, str] = Field(
        default_factory=dict,
        description="Name suffix -> upstream pool; the longest matching suffix wins and `.` "
        "matches every name. Questions that match none are REFUSED.",
    )
    cache: CacheSettings = Field(default_factory=CacheSettings, description="The answer cache.")
    timeout: float = Field(1.0, gt=0, description="Seconds to wait for one upstream answer.")
    attempts: int = Field(
        3, ge=1, description="Upstream tries per question (another backend each time if any)."
    )
    health_query: HealthQuery = Field(
        default_factory=HealthQuery,
        description="Question asked by the active health checks of these pools; a NOERROR or "
        "NXDOMAIN answer counts as healthy.",
    )

    @field_validator("zones")
    @classmethod
    def _normalise_zones(cls, value: dict[str, str]) -> dict[str, str]:
        zones: dict[str, str] = {}
        for suffix, pool in value.items():
            name = absolute_name(suffix)
            if name in zones:
                raise ValueError(f"zone {suffix!r} is listed twice")
            zones[name] = pool
        return zones


class RateLimitSettings(_Strict):
    """Queries per second per client address (token bucket), against reflection abuse."""

    per_second: float = Field(gt=0, description="Sustained queries per second per address.")
    burst: float | None = Field(
        None, gt=0, description="Bucket size (queries allowed at once); `per_second` if unset."
    )
    slip: int = Field(
        2,
        ge=0,
        description="Every n-th refused UDP query gets a tiny truncated (TC) answer so a real "
        "client retries over TCP; 0 drops them all.",
    )
    max_clients: int = Field(
        100_000, ge=1, description="Client addresses tracked at once (idle ones are forgotten)."
    )

    @property
    def bucket(self) -> float:
        """The effective burst size."""
        return self.burst if self.burst is not None else max(1.0, self.per_second)


class DnsListenerConfig(ResolverSettings):
    """The `dns` listener: UDP and TCP on the listener's host and port."""

    udp: bool = Field(True, description="Serve DNS over UDP.")
    tcp: bool = Field(True, description="Serve DNS over TCP (pipelined queries).")
    max_udp_payload: int = Field(
        1232,
        ge=512,
        le=65535,
        description="Largest UDP answer sent, whatever the client advertises (EDNS); larger "
        "answers are truncated (TC) so the client retries over TCP.",
    )
    tcp_idle_timeout: float = Field(
        10.0, gt=0, description="A TCP connection with no query in flight closes after this."
    )
    tcp_max_connections: int = Field(1000, ge=1, description="Open TCP connections at most.")
    tcp_max_inflight: int = Field(
        100, ge=1, description="Queries answered concurrently per TCP connection."
    )
    max_inflight: int = Field(
        10_000, ge=1, description="UDP queries waiting for upstream at once; more are dropped."
    )
    rate_limit: RateLimitSettings | None = Field(
        None, description="Per-client-address query rate limit; off unless set."
    )
    steer_clients: bool = Field(
        True,
        description="With several workers and a rate limit, have the kernel send each client "
        "address to the same worker (Linux SO_REUSEPORT BPF), so the limit holds gateway-wide.",
    )

    @model_validator(mode="after")
    def _something_served(self) -> DnsListenerConfig:
        if not self.zones:
            raise ValueError("zones: give at least one zone, e.g. {'.': my-resolvers}")
        if not (self.udp or self.tcp):
            raise ValueError("enable udp, tcp or both")
        return self


RESOLVER_FIELDS = frozenset(ResolverSettings.model_fields)


class DohConfig(ResolverSettings):
    """The `doh` stage: answers RFC 8484 DNS over HTTPS requests on its route."""

    listener: str | None = Field(
        None,
        description="Name of a `dns` listener whose zones and cache this route shares; "
        "without it, the settings here apply (zones default to `.` -> the route's upstream).",
    )

    @model_validator(mode="before")
    @classmethod
    def _listener_or_settings(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("listener") is not None:
            own = sorted(RESOLVER_FIELDS & set(data))
            if own:
                raise ValueError(
                    f"{', '.join(own)}: these come from listener {data['listener']!r}; "
                    "set them there or drop `listener`"
                )
        return data


def absolute_name(text: str) -> str:
    """`Corp.Internal` -> `corp.internal.`; ValueError for names DNS cannot carry."""
    try:
        return dns.name.from_text(text).to_text().lower()
    except dns.exception.DNSException as exc:
        raise ValueError(f"invalid DNS name {text!r}: {exc}") from None


def name_wire(text: str) -> bytes:
    """A name in lower-cased wire form: `Example.com` -> `\\x07example\\x03com\\x00`."""
    wire = dns.name.from_text(text).to_wire()
    assert wire is not None
    return wire.lower()
