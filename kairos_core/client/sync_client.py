"""`AdminClient`: the async client's methods, blocking, for scripts and the CLI.

The async client runs on a private event loop in a daemon thread, so a blocking call works the
same outside any event loop and inside a running one (it then blocks that loop while it waits).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Coroutine
from typing import Any, TypeVar

from prometheus_client.metrics_core import Metric

from kairos_core.admin.models import (
    Health,
    PluginInfo,
    Readiness,
    ReloadResult,
    RouteInfo,
    UpstreamInfo,
    ValidationResult,
)
from kairos_core.client.async_client import DEFAULT_TIMEOUT, DEFAULT_URL, AsyncAdminClient
from kairos_core.client.summary import MetricsSummary

T = TypeVar("T")


class _LoopThread:
    """An event loop running in a daemon thread until `stop()`."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="kairos-admin-client", daemon=True
        )
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the loop and wait for its result (or exception)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self, client: AsyncAdminClient) -> None:
        """Close the client's connections, stop the loop and join the thread."""
        if self.loop.is_closed():
            return
        if threading.current_thread() is self.thread:  # collected on its own thread: no waiting
            self.loop.create_task(client.close()).add_done_callback(lambda _: self.loop.stop())
            return
        if self.loop.is_running():
            try:
                self.run(client.close())
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self.thread.join(5)
        if not self.loop.is_running():
            self.loop.close()


class AdminClient:
    """A blocking admin API client with the same methods as `AsyncAdminClient` (no `stream`)."""

    def __init__(
        self, url: str = DEFAULT_URL, token: str | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self._client = AsyncAdminClient(url, token, timeout)
        self._runner: _LoopThread | None = None
        self._lock = threading.Lock()
        self._finalizer: weakref.finalize[Any, Any] | None = None

    @property
    def url(self) -> str:
        """The admin API's base URL."""
        return self._client.url

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close connections and stop the client's thread."""
        if self._finalizer is not None:
            self._finalizer()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        with self._lock:
            if self._runner is None or self._finalizer is None or not self._finalizer.alive:
                self._runner = _LoopThread()
                self._finalizer = weakref.finalize(self, self._runner.stop, self._client)
            runner = self._runner
        return runner.run(coro)

    def request(self, method: str, path: str, json: Any = None) -> Any:
        """Call any endpoint (e.g. a plugin's `POST /cache/purge`); its JSON, or its text."""
        return self._run(self._client.request(method, path, json))

    def health(self) -> Health:
        """`GET /health`: `status` is `ok`, or `degraded` when a worker is down (not an error)."""
        return self._run(self._client.health())

    def ready(self) -> Readiness:
        """`GET /ready`: whether the gateway should receive traffic, with each check."""
        return self._run(self._client.ready())

    def live(self) -> dict[str, Any]:
        """`GET /live`: `{"status": "ok", "version": ...}` while the admin listener answers."""
        return self._run(self._client.live())

    def metrics_text(self) -> str:
        """`GET /metrics`: the Prometheus text exposition, merged across workers."""
        return self._run(self._client.metrics_text())

    def metrics(self) -> dict[str, Metric]:
        """The exposition parsed into metric families, by family name (`kairos_requests`, ...)."""
        return self._run(self._client.metrics())

    def metrics_summary(self) -> MetricsSummary:
        """Per route requests, error rate and latency percentiles; in-flight; backends."""
        return self._run(self._client.metrics_summary())

    def routes(self) -> list[RouteInfo]:
        """`GET /routes`: every route with its match rules and plugin chain."""
        return self._run(self._client.routes())

    def upstreams(self) -> list[UpstreamInfo]:
        """`GET /upstreams`: every pool with its backends' health, circuit and in-flight."""
        return self._run(self._client.upstreams())

    def config(self) -> dict[str, Any]:
        """`GET /config`: the running configuration, every secret redacted."""
        return self._run(self._client.config())

    def plugins(self) -> list[PluginInfo]:
        """`GET /plugins`: installed plugins and whether the configuration enables them."""
        return self._run(self._client.plugins())

    def validate(self, text: str) -> ValidationResult:
        """`POST /config/validate`: check a candidate config (YAML or JSON) with the gateway's plugins."""
        return self._run(self._client.validate(text))

    def reload(self) -> ReloadResult:
        """`POST /config/reload` in every worker; raises `ReloadFailed` when the file is refused."""
        return self._run(self._client.reload())

    def openapi(self) -> dict[str, Any]:
        """`GET /openapi.json`: the admin API's OpenAPI document, plugin routes included."""
        return self._run(self._client.openapi())
