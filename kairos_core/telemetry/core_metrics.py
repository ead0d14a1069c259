"""The core's metric families and the per-route children resolved once at config load."""

from __future__ import annotations

import asyncio
import platform
from typing import Any

from kairos_core.metrics import CounterChild, HistogramChild, Metrics
from kairos_core.version import __version__

STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
UNROUTED = "(none)"


class CoreMetrics:
    """Families every gateway process exports (created once per process)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.requests = metrics.counter(
            "kairos_requests_total",
            "Requests answered, by route, method and status class.",
            ("route", "method", "status_class"),
        )
        self.duration = metrics.histogram(
            "kairos_request_duration_seconds",
            "Time from request to the end of the response.",
            ("route",),
        )
        self.upstream_duration = metrics.histogram(
            "kairos_upstream_duration_seconds",
            "Time from sending upstream to the response head.",
            ("route",),
        )
        self.in_flight = metrics.gauge(
            "kairos_requests_in_flight", "Requests being handled now."
        ).labels()
        self.request_bytes = metrics.counter(
            "kairos_request_bytes_total", "Request body bytes received.", ("route",)
        )
        self.response_bytes = metrics.counter(
            "kairos_response_bytes_total", "Response bytes sent.", ("route",)
        )
        self.upstream_errors = metrics.counter(
            "kairos_upstream_errors_total",
            "Upstream attempts that failed, by kind.",
            ("route", "kind"),
        )
        self.retries = metrics.counter(
            "kairos_retries_total", "Upstream attempts after the first.", ("route",)
        )
        self.plugin_duration = metrics.histogram(
            "kairos_plugin_duration_seconds",
            "Time spent inside a plugin stage (sampled).",
            ("route", "plugin"),
        )
        self.internal_errors = metrics.counter(
            "kairos_internal_errors_total",
            "Requests that failed inside the gateway (500).",
            ("route",),
        )
        self.backend_up = metrics.gauge(
            "kairos_backend_up",
            "1 when the backend may receive requests.",
            ("upstream", "backend"),
            merge="max",
        )
        self.breaker_state = metrics.gauge(
            "kairos_circuit_breaker_state",
            "Circuit state of a backend: 0 closed, 1 half-open, 2 open.",
            ("upstream", "backend"),
            merge="max",
        )
        self.backend_duration = metrics.histogram(
            "kairos_backend_duration_seconds",
            "Time from sending to a backend to its response head.",
            ("upstream", "backend"),
        )
        self.backend_in_flight = metrics.gauge(
            "kairos_backend_in_flight", "Requests in flight to a backend.", ("upstream", "backend")
        )
        self.websockets = metrics.gauge(
            "kairos_websockets_open", "WebSocket connections open now.", ("route",)
        )
        self.websocket_messages = metrics.counter(
            "kairos_websocket_messages_total", "WebSocket messages relayed.", ("route", "direction")
        )
        self.websocket_bytes = metrics.counter(
            "kairos_websocket_bytes_total",
            "WebSocket payload bytes relayed.",
            ("route", "direction"),
        )
        self.reloads = metrics.counter(
            "kairos_config_reloads_total", "Configuration reloads, by result.", ("result",)
        )
        self.open_connections = metrics.gauge(
            "kairos_open_connections", "Client connections open now."
        ).labels()
        self.connections_refused = metrics.counter(
            "kairos_connections_refused_total",
            "Client connections closed at once because `server.max_connections` were open.",
        ).labels()
        metrics.gauge(
            "kairos_event_loop_tasks",
            "asyncio tasks alive in the event loop, counted at scrape time (leak detector).",
        ).labels().set_function(event_loop_tasks)
        metrics.gauge(
            "kairos_build_info",
            "Version of the running gateway.",
            ("version", "python"),
            merge="max",
        ).labels(__version__, platform.python_version()).set(1)


def event_loop_tasks() -> float:
    """Tasks of the running event loop (0 outside one); called at scrape time only."""
    try:
        return float(len(asyncio.all_tasks()))
    except RuntimeError:
        return 0.0


class RouteStats:
    """One route's metric children, resolved at config load; per request only `inc`/`observe`."""

    __slots__ = (
        "_core",
        "_requests",
        "duration",
        "errors",
        "internal_errors",
        "name",
        "request_bytes",
        "response_bytes",
        "retries",
        "upstream",
    )

    def __init__(self, core: CoreMetrics, name: str) -> None:
        self._core = core
        self.name = name
        self.duration: HistogramChild = core.duration.labels(name)
        self.upstream: HistogramChild = core.upstream_duration.labels(name)
        self.request_bytes: CounterChild = core.request_bytes.labels(name)
        self.response_bytes: CounterChild = core.response_bytes.labels(name)
        self.retries: CounterChild = core.retries.labels(name)
        self.internal_errors: CounterChild = core.internal_errors.labels(name)
        self.errors: dict[str, CounterChild] = {}
        self._requests: dict[tuple[str, int], CounterChild] = {}

    def record(
        self, method: str, status: int, seconds: float, bytes_in: int, bytes_out: int
    ) -> None:
        """Count one finished request."""
        child = self._requests.get((method, status))
        if child is None:
            child = self._requests_child(method, status)
        child.value += 1
        self.duration.observe(seconds)
        if bytes_in:
            self.request_bytes.value += bytes_in
        self.response_bytes.value += bytes_out

    def _requests_child(self, method: str, status: int) -> CounterChild:
        """Resolve (and remember, for the standard methods) the requests counter of a request."""
        known = method in KNOWN_METHODS
        klass = STATUS_CLASSES[min(max(status // 100, 1), 5) - 1]
        child: CounterChild = self._core.requests.labels(
            self.name, method if known else "OTHER", klass
        )
        if known:  # any token is a method to a client: only the standard ones become keys
            self._requests[(method, status)] = child
        return child

    def upstream_error(self, kind: str) -> None:
        """Count a failed upstream attempt."""
        child = self.errors.get(kind)
        if child is None:
            child = self.errors[kind] = self._core.upstream_errors.labels(self.name, kind)
        child.value += 1


def watch_backends(core: CoreMetrics, pools: dict[str, Any]) -> None:
    """Export backend health, circuit state and in-flight counts, read at scrape time."""
    states = {"closed": 0.0, "half_open": 1.0, "open": 2.0}
    for pool in pools.values():
        for backend in pool.backends:
            labels = (pool.name, backend.name)
            core.backend_up.labels(*labels).set_function(
                lambda b=backend: 1.0 if b.available else 0.0
            )
            core.backend_in_flight.labels(*labels).set_function(
                lambda b=backend: float(b.in_flight)
            )
            backend.latency = core.backend_duration.labels(*labels)
            if backend.breaker is not None:
                core.breaker_state.labels(*labels).set_function(
                    lambda b=backend: states[b.breaker.state.value]
                )


def forget_backends(core: CoreMetrics, pools: dict[str, Any], keep: dict[str, Any]) -> None:
    """Drop series of backends that a new configuration no longer has."""
    current = {(p.name, b.name) for p in keep.values() for b in p.backends}
    for pool in pools.values():
        for backend in pool.backends:
            labels = (pool.name, backend.name)
            if labels not in current:
                families = (
                    core.backend_up,
                    core.backend_in_flight,
                    core.breaker_state,
                    core.backend_duration,
                )
                for family in families:
                    family.remove(*labels)


def websocket_stats(core: CoreMetrics, route: str) -> Any:
    """A route's WebSocket gauges and counters, resolved once."""
    from kairos_core.websocket import WebSocketStats

    return WebSocketStats(
        core.websockets.labels(route),
        core.websocket_messages.labels(route, "in"),
        core.websocket_messages.labels(route, "out"),
        core.websocket_bytes.labels(route, "in"),
        core.websocket_bytes.labels(route, "out"),
    )
