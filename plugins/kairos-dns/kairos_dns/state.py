"""What one configuration's DNS components share (in `services.shared["dns"]`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import dns.rdatatype
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kairos_core import Backend, GatewayServices, UpstreamPool
from kairos_dns.config import HealthQuery, ResolverSettings, absolute_name, name_wire
from kairos_dns.metrics import DnsMetrics
from kairos_dns.resolver import DnsResolver
from kairos_dns.upstream import UpstreamUDP, dns_probe

log = logging.getLogger("kairos.dns")

SHARED_KEY = "dns"
PURGE_COMMAND = "dns.cache.purge"


class PurgeRequest(BaseModel):
    """What to purge: every answer, those for one name (optionally one type), or a zone."""

    model_config = ConfigDict(extra="forbid")

    all: bool = Field(False, description="Every cached answer.")
    name: str | None = Field(None, description="Answers for exactly this name.")
    zone: str | None = Field(None, description="Answers for this name and every name below it.")
    type: str | None = Field(None, description="With `name` or `zone`: only this record type.")

    @field_validator("name", "zone")
    @classmethod
    def _valid_name(cls, value: str | None) -> str | None:
        return None if value is None else absolute_name(value)

    @field_validator("type")
    @classmethod
    def _valid_type(cls, value: str | None) -> str | None:
        return None if value is None else HealthQuery(type=value).type

    @model_validator(mode="after")
    def _one_selector(self) -> PurgeRequest:
        chosen = [n for n in ("name", "zone") if getattr(self, n) is not None]
        if self.all == bool(chosen) or len(chosen) > 1:
            raise ValueError("give exactly one of `all: true`, `name` or `zone`")
        if self.type is not None and self.all:
            raise ValueError("`type` goes with `name` or `zone`, not with `all`")
        return self


class DnsState:
    """Resolvers by key, UDP sockets per backend, metrics and the purge command."""

    def __init__(self, services: GatewayServices, clock: Callable[[], float]) -> None:
        self.services = services
        self.clock = clock
        self.metrics = DnsMetrics(services)
        self.resolvers: dict[str, DnsResolver] = {}
        self._udp: dict[Backend, UpstreamUDP] = {}

    @classmethod
    def of(cls, services: GatewayServices, clock: Callable[[], float]) -> DnsState:
        """The state of this configuration, created (with the purge command) on first use."""
        state = services.shared.get(SHARED_KEY)
        if not isinstance(state, DnsState):
            state = cls(services, clock)
            services.shared[SHARED_KEY] = state
            services.commands[PURGE_COMMAND] = state.purge
        return state

    def resolver(self, key: str, settings: ResolverSettings) -> DnsResolver:
        """The resolver named `key`, built on first use; ValueError for an unknown pool."""
        existing = self.resolvers.get(key)
        if existing is not None:
            return existing
        pools: dict[bytes, UpstreamPool] = {}
        for suffix, pool_name in settings.zones.items():
            pool = self.services.pools.get(pool_name)
            if pool is None:
                defined = ", ".join(sorted(self.services.pools)) or "none"
                raise ValueError(
                    f"zones[{suffix!r}]: unknown upstream {pool_name!r}; defined: {defined}"
                )
            schemes = sorted({b.scheme for b in pool.backends} - {"dns"})
            if schemes:
                raise ValueError(
                    f"zones[{suffix!r}]: upstream {pool_name!r} has {schemes[0]}:// backends; "
                    "DNS pools need dns://host:port backends"
                )
            pools[name_wire(suffix)] = pool
            probe = settings.health_query
            pool.health_probe = dns_probe(
                name_wire(probe.name), dns.rdatatype.from_text(probe.type)
            )
        resolver = DnsResolver(key, settings, pools, self.udp, self.metrics, self.clock)
        self.resolvers[key] = resolver
        return resolver

    def udp(self, backend: Backend) -> UpstreamUDP:
        """The UDP sockets to `backend` (opened on first query)."""
        sockets = self._udp.get(backend)
        if sockets is None:
            sockets = self._udp[backend] = UpstreamUDP(backend.host, backend.port)
        return sockets

    async def purge(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The `dns.cache.purge` command: purge this worker's caches."""
        request = PurgeRequest.model_validate(payload)
        target = request.name or request.zone
        name = name_wire(target) if target else None
        qtype = int(dns.rdatatype.from_text(request.type)) if request.type else None
        removed = 0
        for resolver in self.resolvers.values():
            if resolver.cache is not None:
                removed += resolver.cache.purge(name, request.zone is not None, qtype)
        log.info("purged %d cached DNS answers (%s)", removed, payload)
        return {"removed": removed}

    async def close(self) -> None:
        """Close the upstream sockets once questions still waiting for them are answered."""
        loop = asyncio.get_running_loop()
        longest = max((r.timeout * r.attempts for r in self.resolvers.values()), default=0.0)
        deadline = loop.time() + longest + 1.0
        while any(r.busy for r in self.resolvers.values()) and loop.time() < deadline:  # noqa: ASYNC110 - a counter keeps the hot path cheap
            await asyncio.sleep(0.05)
        for sockets in self._udp.values():
            sockets.close()
        self._udp.clear()
