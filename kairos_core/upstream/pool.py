"""Upstream pools: backends, their availability, and the balancer that picks one per request."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from kairos_core.config.models import BackendConfig, ResolverConfig, UpstreamConfig
from kairos_core.config.resilience import parse_statuses
from kairos_core.resilience.breaker import BreakerState, CircuitBreaker
from kairos_core.tls import upstream_context
from kairos_core.upstream.resolver import TTLResolver

if TYPE_CHECKING:
    from kairos_core.context import RequestContext
    from kairos_core.metrics import HistogramChild
    from kairos_core.plugin_api import Balancer
    from kairos_core.upstream.client import UpstreamClient

log = logging.getLogger("kairos.health")

DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21, "ftps": 21, "dns": 53}

# What an attempt ended with, as reported to Backend.report.
CONNECT_ERROR = -1
TIMEOUT = -2
BROKEN = -3


class NoBackendAvailable(Exception):
    """Every backend of the pool is unhealthy or has its circuit open."""

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Backend:
    """One backend server and its live state: health, ejection, circuit, in-flight requests."""

    __slots__ = (
        "_breaker_failures",
        "_clock",
        "_cooldown",
        "_eject_timer",
        "_on_change",
        "_passive_failures",
        "_passive_statuses",
        "breaker",
        "config",
        "ejected_until",
        "healthy",
        "host",
        "host_header",
        "in_flight",
        "label",
        "latency",
        "max_failures",
        "name",
        "pool_name",
        "port",
        "scheme",
        "url",
        "weight",
    )

    def __init__(
        self,
        pool_name: str,
        config: BackendConfig,
        upstream: UpstreamConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        parts = urlsplit(config.url)
        scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
        default_port = DEFAULT_PORTS.get(scheme, 0)
        self.config = config
        self.pool_name = pool_name
        self.scheme = scheme
        self.host = parts.hostname or ""
        self.port = parts.port or default_port
        host_text = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"{scheme}://{host_text}:{self.port}"
        self.host_header = host_text if self.port == default_port else f"{host_text}:{self.port}"
        self.weight = config.weight
        self.name = config.name or f"{host_text}:{self.port}"
        self.label = f"{pool_name}/{self.name}"
        """`pool/backend`, as access log lines name it."""
        self.healthy = True
        self.in_flight = 0
        self.latency: HistogramChild | None = None
        """Time to the response head, when metrics are on (set by the core's metrics)."""
        self.ejected_until = 0.0
        self._clock = clock
        self._eject_timer: asyncio.TimerHandle | None = None
        self._on_change: Callable[[], None] | None = None
        upstream = upstream or UpstreamConfig(backends=[config])
        passive = upstream.health_check.passive
        self.max_failures = passive.max_failures if passive.enabled else 0
        self._cooldown = passive.cooldown
        self._passive_statuses = (
            parse_statuses(passive.failure_statuses) if passive.enabled else frozenset()
        )
        self._passive_failures = 0
        breaker_config = upstream.circuit_breaker
        self.breaker: CircuitBreaker | None = None
        self._breaker_failures: frozenset[int] = frozenset()
        if breaker_config.enabled:
            self.breaker = CircuitBreaker(
                breaker_config, f"{pool_name}/{self.name}", clock, self._changed
            )
            failures = set(parse_statuses(breaker_config.failure_statuses))
            if breaker_config.count_connect_errors:
                failures.add(CONNECT_ERROR)
            if breaker_config.count_timeouts:
                failures.add(TIMEOUT)
            failures.add(BROKEN)
            self._breaker_failures = frozenset(failures)

    @property
    def available(self) -> bool:
        """Whether the balancer may pick this backend now."""
        if not self.healthy or self.weight <= 0:
            return False
        if self.ejected_until and self._clock() < self.ejected_until:
            return False
        return self.breaker is None or self.breaker.admits()

    @property
    def state(self) -> str:
        """`up`, `down` (failed health checks), `ejected` (passive) or `circuit_open`."""
        if not self.healthy:
            return "down"
        if self.ejected_until and self._clock() < self.ejected_until:
            return "ejected"
        if self.breaker is not None and self.breaker.state is BreakerState.OPEN:
            return "circuit_open"
        return "up"

    def set_healthy(self, healthy: bool) -> None:
        """Record an active health verdict; the pool recomputes its candidates when it changes."""
        if healthy != self.healthy:
            self.healthy = healthy
            log.warning(
                "backend %s/%s is now %s",
                self.pool_name,
                self.name,
                "healthy" if healthy else "UNHEALTHY",
            )
            self._changed()

    def attempt(self) -> None:
        """A request is about to be sent to this backend."""
        self.in_flight += 1
        if self.breaker is not None:
            self.breaker.on_attempt()

    def release(self) -> None:
        """The request (including any streamed body) is over."""
        self.in_flight -= 1

    def report(self, outcome: int) -> None:
        """How the attempt went: a status code, or CONNECT_ERROR / TIMEOUT / BROKEN."""
        if self.breaker is not None:
            self.breaker.record(outcome not in self._breaker_failures)
        if not self.max_failures:
            return
        if outcome < 0 or outcome in self._passive_statuses:
            self._passive_failures += 1
            if self._passive_failures >= self.max_failures:
                self._eject()
        else:
            self._passive_failures = 0

    def _eject(self) -> None:
        cooldown = self._cooldown
        self._passive_failures = 0
        self.ejected_until = self._clock() + cooldown
        log.warning(
            "backend %s/%s ejected for %.1fs after %d failures",
            self.pool_name,
            self.name,
            cooldown,
            self.max_failures,
        )
        self._changed()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._eject_timer is not None:
            self._eject_timer.cancel()
        self._eject_timer = loop.call_later(cooldown, self._changed)

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()

    def adopt(self, old: Backend) -> None:
        """Carry health, ejection and circuit state over from the same backend of an old config."""
        self.healthy = old.healthy
        self.ejected_until = old.ejected_until
        self._passive_failures = old._passive_failures
        if self.breaker is not None and old.breaker is not None:
            self.breaker.adopt(old.breaker)

    def close(self) -> None:
        """Cancel timers (the backend's configuration is being retired)."""
        if self._eject_timer is not None:
            self._eject_timer.cancel()
        if self.breaker is not None:
            self.breaker.close()

    def __repr__(self) -> str:
        return f"<Backend {self.pool_name}/{self.name} {self.state}>"


class UpstreamPool:
    """A named set of backends sharing a balancer and an upstream client."""

    def __init__(
        self,
        name: str,
        config: UpstreamConfig,
        client: UpstreamClient,
        balancer_factory: Callable[[UpstreamPool], Balancer],
        clock: Callable[[], float] = time.monotonic,
        resolver_config: ResolverConfig | None = None,
    ) -> None:
        self.name = name
        self.resolver_config = resolver_config or ResolverConfig()
        self.config = config
        self.client = client
        self.backends: tuple[Backend, ...] = tuple(
            Backend(name, b, config, clock) for b in config.backends
        )
        for backend in self.backends:
            backend._on_change = self._refresh
        self.candidates: tuple[Backend, ...] = ()
        self._refresh()
        self.balancer = balancer_factory(self)
        self.observe: Callable[[Backend, float, bool], None] | None = getattr(
            self.balancer, "observe", None
        )
        """The balancer's latency feedback, if it wants any."""
        self.pick_async: Callable[..., Awaitable[Backend | None]] | None = getattr(
            self.balancer, "pick_async", None
        )
        """Set when the balancer must await something (e.g. a model) to decide."""
        self.health_checker: Any = None
        self._tls_context: ssl.SSLContext | None = None
        self._resolver: TTLResolver | None = None
        self.health_probe: Callable[[Backend], Awaitable[tuple[bool, str]]] | None = None
        """A protocol plugin's own probe (FTP, DNS); HTTP probes are used when unset."""
        self.plugin_state: dict[str, Any] = {}
        """What a plugin keeps per pool, under a key it owns; a reload's new pool starts empty."""

    def _refresh(self) -> None:
        self.candidates = tuple(b for b in self.backends if b.available)

    def choose(self, ctx: RequestContext | None, exclude: Sequence[Backend] = ()) -> Backend:
        """Pick a backend for this request, avoiding `exclude` when another is available."""
        candidates = self.candidates
        if exclude:
            remaining = tuple(b for b in candidates if b not in exclude)
            candidates = remaining or candidates
        if not candidates:
            if self.config.panic_mode:
                candidates = self.backends
            else:
                raise NoBackendAvailable(
                    f"no healthy backend in upstream {self.name!r}", self._retry_after()
                )
        backend = self.balancer.pick(ctx, candidates)
        if backend is None:
            raise NoBackendAvailable(f"balancer found no backend in upstream {self.name!r}")
        return backend

    async def choose_async(
        self, ctx: RequestContext | None, exclude: Sequence[Backend] = ()
    ) -> Backend:
        """Like `choose`, for balancers that decide asynchronously (`pick_async`)."""
        assert self.pick_async is not None
        candidates = self.candidates
        if exclude:
            candidates = tuple(b for b in candidates if b not in exclude) or candidates
        if not candidates:
            return self.choose(ctx, exclude)
        backend = await self.pick_async(ctx, candidates)
        if backend is None or not backend.available:
            return self.choose(ctx, exclude)
        return backend

    def _retry_after(self) -> float:
        waits = [
            b.breaker.retry_after() for b in self.backends if b.breaker is not None and b.healthy
        ]
        waits = [w for w in waits if w > 0]
        return min(waits) if waits else 1.0

    def adopt(self, old: UpstreamPool) -> None:
        """Carry backend state over from the pool of the same name in the previous config."""
        previous = {b.url: b for b in old.backends}
        for backend in self.backends:
            match = previous.get(backend.url)
            if match is not None:
                backend.adopt(match)
        self._refresh()

    async def start(self) -> None:
        """Start the balancer (when it has an async `start`) and active health checks."""
        starter = getattr(self.balancer, "start", None)
        if starter is not None:
            await starter()
        if self.config.health_check.active is not None:
            from kairos_core.resilience.health import ActiveHealthChecker

            self.health_checker = ActiveHealthChecker(self, self.config.health_check.active)
            await self.health_checker.start()

    async def stop_background(self) -> None:
        """Stop health checks and timers (done at once when a reload retires this pool)."""
        if self.health_checker is not None:
            await self.health_checker.stop()
            self.health_checker = None
        for backend in self.backends:
            backend.close()

    def tls_context(self) -> ssl.SSLContext | None:
        """The client TLS context for this pool's HTTPS backends (built once, on first use)."""
        if self._tls_context is None and any(b.scheme == "https" for b in self.backends):
            self._tls_context = upstream_context(self.config.tls)
        return self._tls_context

    async def resolve(self, backend: Backend) -> str:
        """An address for a backend's host, honouring DNS TTLs (for connections the pool's
        client does not make itself, such as WebSocket tunnels)."""
        try:
            ipaddress.ip_address(backend.host)
            return backend.host
        except ValueError:
            pass
        if self._resolver is None:
            self._resolver = TTLResolver(self.resolver_config, self.config.dns_ttl)
        answers = await self._resolver.resolve(backend.host, backend.port, socket.AF_UNSPEC)
        return str(answers[0]["host"])

    async def close(self) -> None:
        """Stop background work and close pooled connections."""
        await self.stop_background()
        await self.client.close()
        closer = getattr(self.balancer, "close", None)
        if closer is not None:
            await closer()
