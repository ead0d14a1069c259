"""Answering one question: cache, zone routing, upstream tries with failover, TC retry over TCP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

from kairos_core import BROKEN, CONNECT_ERROR, TIMEOUT, Backend, NoBackendAvailable, UpstreamPool
from kairos_dns.cache import DnsCache, with_ttls
from kairos_dns.config import ResolverSettings
from kairos_dns.metrics import DnsMetrics
from kairos_dns.upstream import UpstreamError, UpstreamUDP, tcp_exchange
from kairos_dns.wire import (
    AXFR,
    IXFR,
    REFUSED,
    SERVFAIL,
    TC,
    Layout,
    Malformed,
    Query,
    error_reply,
    for_client,
    walk,
    without_cookie,
)

_TC_BYTE = TC >> 8


class ZoneTable:
    """Name suffix -> pool; the longest suffix on a label boundary wins."""

    def __init__(self, zones: Mapping[bytes, UpstreamPool]) -> None:
        self._zones = dict(zones)
        self._only_root = self._zones.get(b"\x00") if len(self._zones) == 1 else None

    def lookup(self, qname: bytes) -> UpstreamPool | None:
        """The pool for a lower-cased wire name, or None when no zone covers it."""
        if self._only_root is not None:
            return self._only_root
        zones = self._zones
        pos = 0
        while True:
            pool = zones.get(qname[pos:])
            if pool is not None:
                return pool
            length = qname[pos]
            if length == 0:
                return None
            pos += length + 1


class DnsResolver:
    """Answers questions for one listener (and the DoH routes sharing it) in one worker."""

    def __init__(
        self,
        name: str,
        settings: ResolverSettings,
        zones: Mapping[bytes, UpstreamPool],
        upstream: Callable[[Backend], UpstreamUDP],
        metrics: DnsMetrics,
        clock: Callable[[], float],
    ) -> None:
        self.name = name
        self.settings = settings
        self.zones = ZoneTable(zones)
        self.cache = DnsCache(settings.cache, clock) if settings.cache.enabled else None
        self.timeout = settings.timeout
        self.attempts = settings.attempts
        self.metrics = metrics
        self._upstream = upstream
        self.busy = 0
        """Questions now waiting for upstream (a retired configuration waits for them)."""
        self._inflight: dict[bytes, asyncio.Future[bytes | None]] = {}
        self._latency: dict[tuple[str, str], Any] = {}
        self._errors: dict[tuple[str, str], Any] = {}
        if self.cache is not None:
            cache = self.cache
            metrics.cache_entries.labels(name).set_function(lambda: float(len(cache)))

    def cached(self, query: Query, transport: str) -> bytes | None:
        """The answer from the cache, or None (then await `resolve`)."""
        cache = self.cache
        if cache is None or query.ecs:
            return None
        answer = cache.get(query)
        if answer is not None:
            self.metrics.cache_hits[transport].inc()
        return answer

    async def resolve(self, query: Query, data: bytes, transport: str) -> bytes:
        """The full answer to `query` (raw bytes `data`) with the client's ID and letter case."""
        if query.qtype in (AXFR, IXFR):
            return error_reply(query, REFUSED)  # zone transfers are not proxied
        pool = self.zones.lookup(query.key[: len(query.qname)])
        if pool is None:
            return error_reply(query, REFUSED)
        if self.cache is None or query.ecs:
            found = await self._forward(pool, query, data)
            return for_client(query, found[0]) if found else error_reply(query, SERVFAIL)
        self.metrics.cache_misses[transport].inc()
        key = query.key
        waiting = self._inflight.get(key)
        if waiting is not None:  # the same question is already on its way: share its answer
            shared = await asyncio.shield(waiting)
            return for_client(query, shared) if shared is not None else error_reply(query, SERVFAIL)
        future: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        shared = None
        try:
            found = await self._forward(pool, query, data)
            if found is None:
                return error_reply(query, SERVFAIL)
            answer, layout = found
            entry = self.cache.store(query, answer, layout)
            if entry is None:
                shared = without_cookie(answer, layout)
                return for_client(query, answer)
            shared = entry.wire  # what later askers get: capped TTLs, no client cookie
            return for_client(query, with_ttls(answer, layout.ttl_offsets, entry.ttls))
        finally:
            del self._inflight[key]
            future.set_result(shared)

    async def _forward(
        self, pool: UpstreamPool, query: Query, data: bytes
    ) -> tuple[bytes, Layout] | None:
        """Try backends until one answers; each try is reported to the breaker and health."""
        self.busy += 1
        try:
            return await self._try_backends(pool, query, data)
        finally:
            self.busy -= 1

    async def _try_backends(
        self, pool: UpstreamPool, query: Query, data: bytes
    ) -> tuple[bytes, Layout] | None:
        question = query.key[:-1]
        tried: list[Backend] = []
        for _ in range(self.attempts):
            try:
                if pool.pick_async is not None:
                    backend = await pool.choose_async(None, tried)
                else:
                    backend = pool.choose(None, tried)
            except NoBackendAvailable:
                return None
            tried.append(backend)
            backend.attempt()
            started = time.perf_counter()
            protocol = "udp"
            try:
                answer = await self._upstream(backend).exchange(data, question, self.timeout)
                if answer[2] & _TC_BYTE:  # too long for UDP: ask again over TCP
                    protocol = "tcp"
                    answer = await tcp_exchange(
                        backend.host, backend.port, data, question, self.timeout
                    )
                layout = walk(answer)
            except TimeoutError:
                outcome, reason = TIMEOUT, "timeout"
            except (Malformed, UpstreamError):
                outcome, reason = BROKEN, "malformed"
            except OSError:
                outcome, reason = CONNECT_ERROR, "unreachable"
            else:
                elapsed = time.perf_counter() - started
                backend.report(200)
                self._observe(pool, protocol, elapsed)
                if pool.observe is not None:
                    pool.observe(backend, elapsed, True)
                return answer, layout
            finally:
                backend.release()
            backend.report(outcome)
            self._count_error(pool, reason)
            if pool.observe is not None:
                pool.observe(backend, time.perf_counter() - started, False)
        return None

    def _observe(self, pool: UpstreamPool, protocol: str, elapsed: float) -> None:
        child = self._latency.get((pool.name, protocol))
        if child is None:
            child = self._latency[pool.name, protocol] = self.metrics.upstream(pool.name, protocol)
        child.observe(elapsed)

    def _count_error(self, pool: UpstreamPool, reason: str) -> None:
        child = self._errors.get((pool.name, reason))
        if child is None:
            child = self._errors[pool.name, reason] = self.metrics.upstream_error(pool.name, reason)
        child.inc()
