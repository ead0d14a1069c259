"""Microbenchmark: nanoseconds per `pick` of every balancer with 3 and 100 backends.

Run with the plugin's venv: `python plugins/kairos-balancers/bench/bench_picks.py`. Prints a
markdown table; the core's built-in `round_robin` is the baseline. Also reports the one-off
cost of building a consistent-hash table for a new candidate set (after a health change).
"""

from __future__ import annotations

import argparse
import random
import time
import timeit
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

from kairos_balancers import (
    ConsistentHash,
    ConsistentHashConfig,
    EwmaConfig,
    LeastConnections,
    PeakEwma,
    PowerOfTwoChoices,
    RandomChoice,
    SmoothWeightedRoundRobin,
)
from multidict import CIMultiDict

from kairos_core import Backend
from kairos_core.builtin.round_robin import RoundRobin  # the core default, as the baseline
from kairos_core.config import validate_config

SIZES = (3, 100)


def make_backends(count: int, weighted: bool) -> tuple[Backend, ...]:
    """`count` backends with random in-flight counts (and weights 1-5 when `weighted`)."""
    rng = random.Random(count)
    pool = {
        "backends": [
            {
                "url": f"http://10.0.{i // 250}.{i % 250 + 1}:8080",
                "name": f"b{i}",
                "weight": rng.randint(1, 5) if weighted else 1,
            }
            for i in range(count)
        ]
    }
    upstream = validate_config({"upstreams": {"bench": pool}}).config.upstreams["bench"]
    backends = tuple(Backend("bench", config, upstream) for config in upstream.backends)
    for backend in backends:
        backend.in_flight = rng.randint(0, 20)
    return backends


def make_request(n: int) -> Any:
    """A stand-in for RequestContext with the fields balancers read."""
    return SimpleNamespace(
        client_ip=f"198.51.{n // 256 % 256}.{n % 256}",
        headers=CIMultiDict({"X-User": f"user-{n}", "Cookie": f"theme=dark; session=s{n}"}),
        path=f"/items/{n}",
        request=SimpleNamespace(raw_path=f"/items/{n}?page=2"),
    )


def hashed(**config: Any) -> Callable[[tuple[Backend, ...]], ConsistentHash]:
    def build(backends: tuple[Backend, ...]) -> ConsistentHash:
        balancer = ConsistentHash(ConsistentHashConfig(**config), backends)
        balancer.warm(backends)
        return balancer

    return build


def ewma(backends: tuple[Backend, ...]) -> PeakEwma:
    balancer = PeakEwma(EwmaConfig(), backends)
    rng = random.Random(1)
    for backend in backends:
        balancer.observe(backend, rng.uniform(0.001, 0.05), True)
    return balancer


CASES: list[tuple[str, bool, Callable[[tuple[Backend, ...]], Any]]] = [
    ("round_robin (core baseline)", False, lambda b: RoundRobin()),
    ("weighted_round_robin", True, SmoothWeightedRoundRobin),
    ("least_connections", False, LeastConnections),
    ("least_connections, weighted", True, LeastConnections),
    ("random", False, RandomChoice),
    ("random, weighted", True, RandomChoice),
    ("power_of_two", False, PowerOfTwoChoices),
    ("power_of_two, weighted", True, PowerOfTwoChoices),
    ("consistent_hash ring, client_ip", False, hashed()),
    ("consistent_hash ring, header", False, hashed(key="header", header="X-User")),
    ("consistent_hash ring, cookie", False, hashed(key="cookie", cookie="session")),
    ("consistent_hash ring, path", False, hashed(key="path")),
    ("consistent_hash maglev, client_ip", False, hashed(algorithm="maglev")),
    (
        "consistent_hash maglev, header",
        False,
        hashed(algorithm="maglev", key="header", header="X-User"),
    ),
    ("ewma", False, ewma),
]


def ns_per_call(statement: Callable[[], object], number: int) -> float:
    """Best of seven runs, in nanoseconds per call."""
    return min(timeit.repeat(statement, number=number, repeat=7)) / number * 1e9


def bench_pick(
    build: Callable[[tuple[Backend, ...]], Any], backends: Sequence[Backend], number: int
) -> float:
    balancer = build(tuple(backends))
    candidates = tuple(backends)
    requests = [make_request(n) for n in range(64)]
    pick = balancer.pick
    cycle = iter(range(1 << 62))

    def one() -> object:
        return pick(requests[next(cycle) & 63], candidates)

    return ns_per_call(one, number)


def bench_observe(backends: Sequence[Backend], number: int) -> float:
    balancer = ewma(tuple(backends))
    observe = balancer.observe
    backend = backends[0]
    return ns_per_call(lambda: observe(backend, 0.01, True), number)


def bench_rebuild(config: dict[str, Any], count: int) -> float:
    """Milliseconds for the first pick after one of `count` backends becomes unavailable."""
    backends = make_backends(count, weighted=False)
    balancer = ConsistentHash(ConsistentHashConfig(**config), backends)
    balancer.warm(backends)  # as at config load
    request = make_request(1)
    started = time.perf_counter()
    balancer.pick(request, backends[1:])
    return (time.perf_counter() - started) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=100_000, help="calls per timing run")
    parser.add_argument(
        "--rounds", type=int, default=1, help="repeat everything; report each cell's best"
    )
    args = parser.parse_args()
    backends = {(n, w): make_backends(n, w) for n in SIZES for w in (False, True)}
    rows: dict[str, list[float]] = {}
    builds: dict[str, list[float]] = {}
    rebuild_cases = (
        ("ring, 160 virtual nodes", {}),
        ("maglev, 65537 slots", {"algorithm": "maglev"}),
        ("maglev, 5003 slots", {"algorithm": "maglev", "table_size": 5003}),
    )

    def keep_best(table: dict[str, list[float]], name: str, cells: list[float]) -> None:
        table[name] = [min(a, b) for a, b in zip(table.get(name, cells), cells, strict=True)]

    for _ in range(args.rounds):
        for name, weighted, build in CASES:
            cells = [bench_pick(build, backends[(n, weighted)], args.number) for n in SIZES]
            keep_best(rows, name, cells)
        cells = [bench_observe(backends[(n, False)], args.number) for n in SIZES]
        keep_best(rows, "ewma `observe` (per upstream attempt)", cells)
        for label, config in rebuild_cases:
            keep_best(builds, label, [bench_rebuild(config, n + 1) for n in SIZES])

    empty = ns_per_call(lambda: None, args.number)
    print(f"Python call overhead (empty lambda): {empty:.0f} ns, included below.\n")
    print("| balancer | 3 backends (ns/pick) | 100 backends (ns/pick) |")
    print("|---|---:|---:|")
    for name, cells in rows.items():
        print(f"| {name} | {cells[0]:.0f} | {cells[1]:.0f} |")
    print()
    print("| first pick after a backend leaves | 3 backends (ms) | 100 backends (ms) |")
    print("|---|---:|---:|")
    for name, cells in builds.items():
        print(f"| consistent_hash {name} | {cells[0]:.2f} | {cells[1]:.2f} |")


if __name__ == "__main__":
    main()
