"""A readable summary of a gateway's Prometheus metrics: traffic per route, in-flight, backends."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client.metrics_core import Metric
from pydantic import BaseModel, Field

from kairos_core.admin.stream import quantile

CIRCUIT_STATES = {0: "closed", 1: "half_open", 2: "open"}
UNROUTED = "(none)"


class RouteTraffic(BaseModel):
    """Requests a route answered since the gateway started, and their latency."""

    route: str = Field(description="The route's name; `(none)` counts requests no route matched.")
    requests: float
    errors: float = Field(description="5xx answers.")
    client_errors: float = Field(description="4xx answers.")
    error_rate: float = Field(description="5xx answers / requests (0 when there were none).")
    p50: float | None = Field(description="Median request duration in seconds (from buckets).")
    p95: float | None
    p99: float | None


class BackendState(BaseModel):
    """One backend as the metrics see it."""

    upstream: str
    backend: str
    up: bool
    circuit: str = Field(description="`closed`, `half_open` or `open`.")
    in_flight: float


class MetricsSummary(BaseModel):
    """What `kairos metrics` shows, computed from one scrape of `/metrics`."""

    routes: list[RouteTraffic] = Field(default_factory=list)
    in_flight: float = 0.0
    open_connections: float = 0.0
    backends: list[BackendState] = Field(default_factory=list)
    reloads: dict[str, float] = Field(default_factory=dict, description="Reloads by result.")

    @property
    def backends_up(self) -> int:
        """How many backends may receive requests."""
        return sum(1 for backend in self.backends if backend.up)

    @property
    def backends_down(self) -> int:
        """How many backends may not."""
        return len(self.backends) - self.backends_up


def _by_labels(
    families: Mapping[str, Metric], family: str, *labels: str
) -> dict[tuple[str, ...], float]:
    """Sample values of `family` keyed by the given label values (summed over other labels)."""
    out: dict[tuple[str, ...], float] = {}
    metric = families.get(family)
    if metric is None:
        return out
    for sample in metric.samples:
        if sample.name.endswith(("_created", "_bucket", "_count", "_sum")):
            continue
        key = tuple(sample.labels.get(label, "") for label in labels)
        out[key] = out.get(key, 0.0) + sample.value
    return out


def _latency(families: Mapping[str, Metric]) -> dict[str, tuple[float | None, ...]]:
    """p50, p95 and p99 per route from the cumulative duration buckets."""
    cumulative: dict[str, dict[float, float]] = {}
    metric = families.get("kairos_request_duration_seconds")
    for sample in metric.samples if metric is not None else ():
        if sample.name.endswith("_bucket"):
            buckets = cumulative.setdefault(sample.labels.get("route", ""), {})
            bound = float(sample.labels["le"])
            buckets[bound] = buckets.get(bound, 0.0) + sample.value
    out: dict[str, tuple[float | None, ...]] = {}
    for route, buckets in cumulative.items():
        bounds = sorted(buckets)
        counts, seen = [], 0.0
        for bound in bounds:
            counts.append(buckets[bound] - seen)
            seen = buckets[bound]
        finite = [b for b in bounds if b != float("inf")]
        out[route] = tuple(quantile(finite, counts, q) for q in (0.50, 0.95, 0.99))
    return out


def _unrouted_last(item: tuple[str, dict[str, float]]) -> tuple[bool, str]:
    return item[0] == UNROUTED, item[0]


def summarize(families: Mapping[str, Metric]) -> MetricsSummary:
    """Reduce parsed metric families (`AsyncAdminClient.metrics()`) to a `MetricsSummary`."""
    by_class = _by_labels(families, "kairos_requests", "route", "status_class")
    latency = _latency(families)
    totals: dict[str, dict[str, float]] = {}
    for (route, klass), value in by_class.items():
        entry = totals.setdefault(route, {"requests": 0.0, "5xx": 0.0, "4xx": 0.0})
        entry["requests"] += value
        if klass in ("4xx", "5xx"):
            entry[klass] += value
    routes = [
        RouteTraffic(
            route=route,
            requests=entry["requests"],
            errors=entry["5xx"],
            client_errors=entry["4xx"],
            error_rate=entry["5xx"] / entry["requests"] if entry["requests"] else 0.0,
            p50=latency.get(route, (None,) * 3)[0],
            p95=latency.get(route, (None,) * 3)[1],
            p99=latency.get(route, (None,) * 3)[2],
        )
        for route, entry in sorted(totals.items(), key=_unrouted_last)
    ]
    up = _by_labels(families, "kairos_backend_up", "upstream", "backend")
    circuits = _by_labels(families, "kairos_circuit_breaker_state", "upstream", "backend")
    in_flight = _by_labels(families, "kairos_backend_in_flight", "upstream", "backend")
    backends = [
        BackendState(
            upstream=key[0],
            backend=key[1],
            up=bool(value),
            circuit=CIRCUIT_STATES.get(int(circuits.get(key, 0)), "closed"),
            in_flight=in_flight.get(key, 0.0),
        )
        for key, value in sorted(up.items())
    ]
    return MetricsSummary(
        routes=routes,
        in_flight=sum(_by_labels(families, "kairos_requests_in_flight").values()),
        open_connections=sum(_by_labels(families, "kairos_open_connections").values()),
        backends=backends,
        reloads={
            k[0]: v for k, v in _by_labels(families, "kairos_config_reloads", "result").items()
        },
    )
