"""Router lookup: 10 vs 10,000 routes (trie, uncached), and a linear scan of compiled regexes."""

from __future__ import annotations

import random
import re
import statistics
import time
from collections.abc import Callable

from kairos_core.router import Router, RouteSpec


def routes(count: int) -> list[RouteSpec[str]]:
    return [RouteSpec(f"r{i}", f"/svc{i % 97}/res{i}/{{id}}/items/{{item}}") for i in range(count)]


def time_per_lookup(fn: Callable[[str], object], paths: list[str], rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for path in paths:
            fn(path)
        best = min(best, (time.perf_counter() - started) / len(paths))
    return best * 1e6


def lookup(method: Callable[[str, str, str, dict[str, str]], object]) -> Callable[[str], object]:
    """A GET lookup of a path with no host or headers through `method` (match or _match)."""
    return lambda path: method("GET", "", path, {})


def regex_scan(specs: list[RouteSpec[str]]) -> Callable[[str], str | None]:
    compiled = [
        (re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", s.path) + "$"), s.target)
        for s in specs
    ]

    def lookup(path: str) -> str | None:
        for pattern, target in compiled:
            if pattern.match(path):
                return target
        return None

    return lookup


def main(repetitions: int = 9) -> None:
    rng = random.Random(1)
    setups = []
    for count in (10, 10_000):
        specs = routes(count)
        sample = [rng.randrange(count) for _ in range(2000)]
        paths = [f"/svc{i % 97}/res{i}/abc/items/{i}" for i in sample]
        setups.append((count, specs, Router(specs), paths))
    trie_times: dict[int, list[float]] = {count: [] for count, *_ in setups}
    for _ in range(repetitions):  # interleaved, so both sizes see the same machine
        for count, _specs, router, paths in setups:
            trie_times[count].append(time_per_lookup(lookup(router._match), paths, rounds=2))
    rows = []
    for count, specs, router, paths in setups:
        cached = time_per_lookup(lookup(router.match), paths)
        scan = time_per_lookup(regex_scan(specs), paths[:200] if count > 100 else paths, rounds=2)
        rows.append((count, statistics.median(trie_times[count]), cached, scan))
    ratios = [big / small for small, big in zip(trie_times[10], trie_times[10_000], strict=True)]
    print(
        f"Trie lookups: median of {repetitions} interleaved repetitions "
        "(each the best of 2 rounds of 2,000 lookups)\n"
    )
    print("| routes | trie lookup µs | memoised µs | regex scan µs | scan ÷ trie |")
    print("|---:|---:|---:|---:|---:|")
    for count, trie, cached, scan in rows:
        print(f"| {count:,} | {trie:.2f} | {cached:.2f} | {scan:.1f} | {scan / trie:.1f}x |")
    print(
        f"\n10,000 ÷ 10 routes (trie): {statistics.median(ratios):.2f}x, median of the "
        f"repetitions' ratios ({min(ratios):.2f}-{max(ratios):.2f}) (target <= 1.5x)"
    )


if __name__ == "__main__":
    main()
