"""Microbenchmark: the ip-filter decision, per lookup and per request through the stage.

Run with the plugin's venv:  python plugins/kairos-ipfilter/bench/bench_ipfilter.py
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import time
from collections.abc import Callable

from kairos_ipfilter import AddressFilter


def networks(count: int, seed: int = 7) -> list[ipaddress.IPv4Network]:
    """`count` random /24 blocks (a large deny list, e.g. a reputation feed)."""
    rng = random.Random(seed)
    return [ipaddress.IPv4Network((rng.getrandbits(24) << 8, 24)) for _ in range(count)]


def per_call(call: Callable[[str], object], args: list[str], repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        for address in args:
            call(address)
    return (time.perf_counter() - start) / (repeat * len(args)) * 1e6


def main(repeat: int) -> None:
    rng = random.Random(1)
    addresses = [str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(1000)]
    print("| case | µs |")
    print("|---|---:|")
    for size in (10, 1_000, 100_000):
        blocks = networks(size)
        start = time.perf_counter()
        check = AddressFilter([], blocks)
        built = (time.perf_counter() - start) * 1e3
        uncached = per_call(check._decide, addresses, repeat)  # the work behind a cache miss
        cached = per_call(check.admits, addresses, repeat)
        print(f"| {size} deny blocks: build the table once | {built * 1e3:.0f} |")
        print(f"| {size} deny blocks: one decision, cache miss (parse + bisect) | {uncached:.2f} |")
        print(f"| {size} deny blocks: one decision, cached address | {cached:.2f} |")
        if size <= 1000:

            def scan(address: str, blocks: list[ipaddress.IPv4Network] = blocks) -> bool:
                return any(ipaddress.ip_address(address) in n for n in blocks)

            naive = per_call(scan, addresses[:50], 1)
            print(f"| {size} deny blocks: one decision by linear scan (for scale) | {naive:.1f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="passes over 1000 addresses")
    main(parser.parse_args().repeat)
