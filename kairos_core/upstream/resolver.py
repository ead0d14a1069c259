"""Backend name resolution that honours each DNS answer's TTL (dnspython), for aiohttp."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from pathlib import Path
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.rdatatype
import dns.resolver
from aiohttp.abc import AbstractResolver, ResolveResult

from kairos_core.config.models import ResolverConfig

log = logging.getLogger("kairos.resolver")

_FALLBACK_TTL = 30.0


def _hosts_file_names(path: str = "/etc/hosts") -> frozenset[str]:
    """Names listed in the hosts file; those are resolved the system's way."""
    names: set[str] = {"localhost"}
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset(names)
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        names.update(name.lower() for name in fields[1:])
    return frozenset(names)


class TTLResolver(AbstractResolver):
    """Resolves A/AAAA records and caches each answer for its own TTL (clamped)."""

    def __init__(self, config: ResolverConfig, fixed_ttl: float | None = None) -> None:
        self._config = config
        self._fixed_ttl = fixed_ttl
        self._cache: dict[tuple[str, int, int], tuple[float, list[ResolveResult]]] = {}
        self._hosts = _hosts_file_names()
        self._resolver: dns.asyncresolver.Resolver | None = None
        try:
            resolver = dns.asyncresolver.Resolver(configure=not config.nameservers)
        except dns.resolver.NoResolverConfiguration:
            resolver = None
        if resolver is not None:
            if config.nameservers:
                resolver.nameservers = [_nameserver(spec) for spec in config.nameservers]
            resolver.lifetime = config.timeout
            resolver.cache = None
        self._resolver = resolver

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Addresses for `host`, from the cache while its answer's TTL lasts."""
        key = (host.lower(), port, int(family))
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        if self._resolver is None or (key[0] in self._hosts and not self._config.nameservers):
            results, ttl = await self._system(host, port, family), _FALLBACK_TTL
        else:
            results, ttl = await self._dns(host, port, family)
        if self._fixed_ttl is not None:
            ttl = self._fixed_ttl
        ttl = min(max(ttl, self._config.min_ttl), self._config.max_ttl)
        self._cache[key] = (now + ttl, results)
        return results

    async def _dns(
        self, host: str, port: int, family: socket.AddressFamily
    ) -> tuple[list[ResolveResult], float]:
        assert self._resolver is not None
        kinds = []
        if family in (socket.AF_INET, socket.AF_UNSPEC):
            kinds.append((dns.rdatatype.A, socket.AF_INET))
        if family in (socket.AF_INET6, socket.AF_UNSPEC):
            kinds.append((dns.rdatatype.AAAA, socket.AF_INET6))
        answers = await asyncio.gather(
            *(self._resolver.resolve(host, rdtype) for rdtype, _ in kinds),
            return_exceptions=True,
        )
        results: list[ResolveResult] = []
        ttl = float("inf")
        errors: list[BaseException] = []
        for (_, fam), answer in zip(kinds, answers, strict=True):
            if isinstance(answer, BaseException):
                errors.append(answer)
                continue
            ttl = min(ttl, float(answer.rrset.ttl if answer.rrset is not None else _FALLBACK_TTL))
            for record in answer:
                results.append(_result(host, record.address, port, fam))
        if not results:
            if self._config.nameservers:
                raise OSError(f"cannot resolve {host!r}: {_describe(errors)}")
            # Not in DNS as the resolver sees it: try the system (mDNS, NSS modules ...).
            return await self._system(host, port, family), _FALLBACK_TTL
        return results, ttl

    async def _system(
        self, host: str, port: int, family: socket.AddressFamily
    ) -> list[ResolveResult]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, family=family, flags=socket.AI_ADDRCONFIG
            )
        except socket.gaierror as exc:
            raise OSError(f"cannot resolve {host!r}: {exc.strerror}") from None
        return [_result(host, str(info[4][0]), port, info[0]) for info in infos]

    async def close(self) -> None:
        """Nothing to release; present for aiohttp's resolver interface."""
        self._cache.clear()


def _result(host: str, address: str, port: int, family: int) -> ResolveResult:
    return {
        "hostname": host,
        "host": address,
        "port": port,
        "family": family,
        "proto": 0,
        "flags": socket.AI_NUMERICHOST,
    }


def _nameserver(spec: str) -> Any:
    host, port = spec, 53
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        if rest.startswith(":"):
            port = int(rest[1:])
    elif spec.count(":") == 1:
        host, _, port_text = spec.partition(":")
        port = int(port_text)
    return dns.nameserver.Do53Nameserver(host, port)


def _describe(errors: list[BaseException]) -> str:
    for err in errors:
        if isinstance(err, dns.resolver.NXDOMAIN):
            return "no such domain"
        if isinstance(err, dns.exception.Timeout):
            return "DNS timeout"
    return "; ".join(type(e).__name__ for e in errors) or "no address records"
