"""In-process metrics: plain numbers on the hot path, exported (and merged) at scrape time.

A plugin or the core asks for a family once (`metrics.counter(...)`), resolves its labelled
children at config load (`family.labels(route="users")`), and then only does `child.inc()` per
request. `snapshot()` is a picklable copy that a supervisor merges across workers;
`render()` turns snapshots into the Prometheus text format with prometheus-client.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

Kind = Literal["counter", "gauge", "histogram"]
Merge = Literal["sum", "max", "min"]

LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)


class CounterChild:
    """A monotonically increasing number."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        """Add `amount` (>= 0)."""
        self.value += amount


class GaugeChild:
    """A number that goes up and down, or is read from a callback at scrape time."""

    __slots__ = ("function", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self.function: Callable[[], float] | None = None

    def set(self, value: float) -> None:
        """Set the current value."""
        self.value = value

    def inc(self, amount: float = 1.0) -> None:
        """Add `amount`."""
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        """Subtract `amount`."""
        self.value -= amount

    def set_function(self, function: Callable[[], float]) -> None:
        """Read the value from `function` at scrape time instead."""
        self.function = function

    def read(self) -> float:
        """The value now."""
        return self.function() if self.function is not None else self.value


class HistogramChild:
    """Observations counted into fixed buckets, plus their sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Record one observation."""
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value


Child = CounterChild | GaugeChild | HistogramChild


@dataclass
class Family:
    """A metric name with its label names and one child per label combination."""

    name: str
    documentation: str
    kind: Kind
    labelnames: tuple[str, ...]
    buckets: tuple[float, ...] = ()
    merge: Merge = "sum"
    """How worker values combine for gauges: summed (in-flight), or max/min (states)."""
    children: dict[tuple[str, ...], Child] = field(default_factory=dict)

    def labels(self, *values: str, **named: str) -> Any:
        """The child for these label values (create it on first use; keep the reference)."""
        key = tuple(values) if values else tuple(named[n] for n in self.labelnames)
        if len(key) != len(self.labelnames):
            raise ValueError(f"{self.name}: expected labels {self.labelnames}, got {key}")
        child = self.children.get(key)
        if child is None:
            if self.kind == "counter":
                child = CounterChild()
            elif self.kind == "gauge":
                child = GaugeChild()
            else:
                child = HistogramChild(self.buckets)
            self.children[key] = child
        return child

    def remove(self, *values: str) -> None:
        """Forget one label combination (e.g. a backend that left the config)."""
        self.children.pop(tuple(values), None)


class Metrics:
    """The metric families of one process."""

    def __init__(self) -> None:
        self.families: dict[str, Family] = {}

    def _family(
        self,
        name: str,
        documentation: str,
        kind: Kind,
        labelnames: Iterable[str],
        buckets: Sequence[float] = (),
        merge: Merge = "sum",
    ) -> Family:
        labels = tuple(labelnames)
        existing = self.families.get(name)
        if existing is not None:
            if existing.kind != kind or existing.labelnames != labels:
                raise ValueError(
                    f"metric {name} already exists as a {existing.kind} with labels {existing.labelnames}"
                )
            return existing
        family = Family(name, documentation, kind, labels, tuple(buckets), merge)
        self.families[name] = family
        return family

    def counter(self, name: str, documentation: str, labelnames: Iterable[str] = ()) -> Family:
        """A counter family (name without the `_total` suffix is fine; it is added on export)."""
        return self._family(name.removesuffix("_total"), documentation, "counter", labelnames)

    def gauge(
        self, name: str, documentation: str, labelnames: Iterable[str] = (), merge: Merge = "sum"
    ) -> Family:
        """A gauge family; `merge` says how values from several workers combine."""
        return self._family(name, documentation, "gauge", labelnames, merge=merge)

    def histogram(
        self,
        name: str,
        documentation: str,
        labelnames: Iterable[str] = (),
        buckets: Sequence[float] = LATENCY_BUCKETS,
    ) -> Family:
        """A histogram family with fixed bucket bounds."""
        return self._family(name, documentation, "histogram", labelnames, sorted(buckets))

    def snapshot(self) -> dict[str, Any]:
        """A picklable copy of every value, for merging across worker processes."""
        out: dict[str, Any] = {}
        for family in self.families.values():
            values: dict[tuple[str, ...], Any] = {}
            for key, child in family.children.items():
                if isinstance(child, CounterChild):
                    values[key] = child.value
                elif isinstance(child, GaugeChild):
                    values[key] = child.read()
                else:
                    values[key] = (list(child.counts), child.sum)
            out[family.name] = {
                "doc": family.documentation,
                "kind": family.kind,
                "labels": family.labelnames,
                "buckets": family.buckets,
                "merge": family.merge,
                "values": values,
            }
        return out


def merge(
    snapshots: Iterable[dict[str, Any]], gauge_label: str | None = "worker"
) -> dict[str, Any]:
    """Combine worker snapshots: counters and histograms add up; gauges add up too."""
    merged: dict[str, Any] = {}
    for snapshot in snapshots:
        for name, data in snapshot.items():
            target = merged.setdefault(name, {**data, "values": {}})
            for key, value in data["values"].items():
                current = target["values"].get(key)
                if current is None:
                    target["values"][key] = (
                        (list(value[0]), value[1]) if data["kind"] == "histogram" else value
                    )
                elif data["kind"] == "histogram":
                    counts = [a + b for a, b in zip(current[0], value[0], strict=True)]
                    target["values"][key] = (counts, current[1] + value[1])
                elif data["kind"] == "gauge" and data.get("merge") == "max":
                    target["values"][key] = max(current, value)
                elif data["kind"] == "gauge" and data.get("merge") == "min":
                    target["values"][key] = min(current, value)
                else:
                    target["values"][key] = current + value
    return merged


class _SnapshotCollector(Collector):
    def __init__(self, snapshot: dict[str, Any]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        for name, data in sorted(self._snapshot.items()):
            labels = list(data["labels"])
            metric: Metric
            if data["kind"] == "counter":
                metric = CounterMetricFamily(name, data["doc"], labels=labels)
                for key, value in data["values"].items():
                    metric.add_metric(list(key), value)
            elif data["kind"] == "gauge":
                metric = GaugeMetricFamily(name, data["doc"], labels=labels)
                for key, value in data["values"].items():
                    metric.add_metric(list(key), value)
            else:
                metric = HistogramMetricFamily(name, data["doc"], labels=labels)
                bounds = [*(str(b) for b in data["buckets"]), "+Inf"]
                for key, (counts, total) in data["values"].items():
                    cumulative, running = [], 0
                    for bound, count in zip(bounds, counts, strict=True):
                        running += count
                        cumulative.append((bound, running))
                    metric.add_metric(list(key), cumulative, total)
            yield metric


def render(snapshot: dict[str, Any]) -> bytes:
    """The Prometheus text exposition of a (merged) snapshot."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SnapshotCollector(snapshot))
    return generate_latest(registry)
