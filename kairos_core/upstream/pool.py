"""Upstream pools: backends, their availability, and the balancer that picks one per request."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from kairos_core.config.models import BackendConfig, UpstreamConfig

if TYPE_CHECKING:
    from kairos_core.context import RequestContext
    from kairos_core.plugin_api import Balancer
    from kairos_core.upstream.client import UpstreamClient


class NoBackendAvailable(Exception):
    """Every backend of the pool is unhealthy or has its circuit open."""


class Backend:
    """One backend server and its live state (health, in-flight requests)."""

    __slots__ = (
        "_on_change",
        "config",
        "healthy",
        "host",
        "host_header",
        "in_flight",
        "name",
        "pool_name",
        "port",
        "scheme",
        "url",
        "weight",
    )

    def __init__(self, pool_name: str, config: BackendConfig) -> None:
        parts = urlsplit(config.url)
        scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
        default_port = 443 if scheme == "https" else 80
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
        self.healthy = True
        self.in_flight = 0
        self._on_change: Callable[[], None] | None = None

    @property
    def available(self) -> bool:
        """Whether the balancer may pick this backend now."""
        return self.healthy and self.weight > 0

    def set_healthy(self, healthy: bool) -> None:
        """Record a health verdict; the pool recomputes its candidates when it changes."""
        if healthy != self.healthy:
            self.healthy = healthy
            if self._on_change is not None:
                self._on_change()

    def __repr__(self) -> str:
        return f"<Backend {self.pool_name}/{self.name} healthy={self.healthy}>"


class UpstreamPool:
    """A named set of backends sharing a balancer and an upstream client."""

    def __init__(
        self,
        name: str,
        config: UpstreamConfig,
        client: UpstreamClient,
        balancer_factory: Callable[[UpstreamPool], Balancer],
    ) -> None:
        self.name = name
        self.config = config
        self.client = client
        self.backends: tuple[Backend, ...] = tuple(Backend(name, b) for b in config.backends)
        for backend in self.backends:
            backend._on_change = self._refresh
        self.candidates: tuple[Backend, ...] = ()
        self._refresh()
        self.balancer = balancer_factory(self)

    def _refresh(self) -> None:
        self.candidates = tuple(b for b in self.backends if b.available)

    def choose(self, ctx: RequestContext | None, exclude: Sequence[Backend] = ()) -> Backend:
        """Pick a backend for this request, avoiding `exclude` when another is available."""
        candidates = self.candidates
        if exclude:
            remaining = tuple(b for b in candidates if b not in exclude)
            candidates = remaining or candidates
        if not candidates:
            raise NoBackendAvailable(f"no healthy backend in upstream {self.name!r}")
        backend = self.balancer.pick(ctx, candidates)
        if backend is None:
            raise NoBackendAvailable(f"balancer found no backend in upstream {self.name!r}")
        return backend

    async def close(self) -> None:
        """Close pooled connections and stop background work."""
        await self.client.close()
        for closer in (getattr(self.balancer, "close", None),):
            if closer is not None:
                await closer()
