"""What one live-stream update costs the admin listener, by number of routes (markdown table).

Builds a realistic metrics snapshot (every core family per route, a rate-limit and a cache
counter per route, backends per pool) and times the stream's summary and rates, and the
per-label counter breakdown the dashboard reads, alone. Run with the plugin's venv:

    python plugins/kairos-dashboard/bench/bench_stream_update.py
"""

from __future__ import annotations

import random
import time
from typing import Any

from kairos_core.admin.stream import _by_label, rates, summarize
from kairos_core.metrics import Metrics
from kairos_core.telemetry.core_metrics import CoreMetrics, RouteStats


def populated(routes: int, backends_per_pool: int = 4) -> dict[str, Any]:
    """A snapshot with traffic on every route, as a busy gateway exports it."""
    metrics = Metrics()
    core = CoreMetrics(metrics)
    decisions = metrics.counter("kairos_ratelimit_decisions", "", ("route", "limit", "decision"))
    cache = metrics.counter("kairos_cache_requests", "", ("route", "result"))
    rng = random.Random(7)
    for index in range(routes):
        name = f"route-{index}"
        stats = RouteStats(core, name)
        for _ in range(200):
            stats.record("GET", rng.choice((200, 200, 200, 404, 503)), rng.random() / 20, 0, 512)
            stats.upstream.observe(rng.random() / 30)
        for decision in ("allowed", "limited"):
            decisions.labels(name, "10-per-1s", decision).value += rng.randint(1, 100)
        for result in ("hit", "miss", "stale", "bypass"):
            cache.labels(name, result).value += rng.randint(1, 100)
        for backend in range(backends_per_pool):
            labels = (f"pool-{index}", f"b{backend}")
            core.backend_up.labels(*labels).set(1)
            core.breaker_state.labels(*labels).set(0)
            core.backend_in_flight.labels(*labels).set(rng.randint(0, 5))
    return metrics.snapshot()


def per_call_ms(function: Any, *args: Any) -> float:
    """Median milliseconds of one call over enough calls to last about half a second."""
    samples = []
    deadline = time.perf_counter() + 0.5
    while time.perf_counter() < deadline or len(samples) < 5:
        started = time.perf_counter()
        function(*args)
        samples.append((time.perf_counter() - started) * 1000)
    return sorted(samples)[len(samples) // 2]


def main() -> None:
    print("| routes | summary + rates per update (ms) | of which counters by label (ms) |")
    print("|---:|---:|---:|")
    for routes in (10, 100, 1000):
        snapshot = populated(routes)
        previous = summarize(snapshot)

        def update(snapshot: dict[str, Any] = snapshot, previous: Any = previous) -> None:
            rates(summarize(snapshot), previous, 1.0)

        total = per_call_ms(update)
        labels = per_call_ms(_by_label, snapshot)
        print(f"| {routes} | {total:.3f} | {labels:.3f} |")


if __name__ == "__main__":
    main()
