"""Rate-limit check costs: memory (in-process and shared memory) and Redis (pipelined or not).

Run with the plugin's venv: `python plugins/kairos-ratelimit/bench/bench_checks.py`
(`--redis URL` to pick the server, `--quick` for a short run). Prints markdown tables.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from kairos_ratelimit.config import LimitSpec, RedisSettings
from kairos_ratelimit.memory import local_counter
from kairos_ratelimit.redis_counter import RedisCounter
from kairos_ratelimit.redis_link import RedisLink
from kairos_ratelimit.shared_counters import SharedConcurrency, SharedLog, SharedWindowed
from redis.asyncio import Redis

ALGORITHMS = [
    "token_bucket",
    "fixed_window",
    "sliding_window_log",
    "sliding_window_counter",
    "gcra",
    "concurrency",
]
PROXIED_REQUEST_US = 200.0
"""CPU of one proxied request on this box (the issue's baseline)."""


def spec_for(algorithm: str) -> LimitSpec:
    """A generous limit so that the benchmark measures allowed checks."""
    if algorithm == "concurrency":
        return LimitSpec(algorithm="concurrency", limit=1_000_000_000)
    if algorithm == "sliding_window_log":  # one timestamp per request: a limit it can hold
        return LimitSpec(algorithm=algorithm, limit=1_000, window=3600)
    return LimitSpec(algorithm=algorithm, limit=1_000_000_000, window=3600)  # type: ignore[arg-type]


def shared_counter(algorithm: str, path: Path) -> Any:
    spec = spec_for(algorithm)
    if algorithm == "concurrency":
        return SharedConcurrency(spec, path, 100_000, 0, 2)
    if algorithm == "sliding_window_log":
        return SharedLog(spec, path, 1_000)
    return SharedWindowed(spec, path, 100_000)


def per_check_us(counter: Any, keys: list[str], count: int) -> float:
    """CPU microseconds per check (hit, and release for concurrency)."""
    release = counter.spec.algorithm == "concurrency"
    started = time.process_time()
    n = len(keys)
    for i in range(count):
        decision = counter.hit(keys[i % n])
        if release:
            counter.undo(decision)
    return (time.process_time() - started) / count * 1e6


def memory_table(count: int) -> list[str]:
    rows = [
        "| algorithm | in-process µs/check | shared memory µs/check | sharing cost µs "
        "| % of a 200 µs proxied request (shared) |",
        "|---|---:|---:|---:|---:|",
    ]
    keys = [f"203.0.113.{i % 250}|{i}" for i in range(1000)]
    directory = Path(tempfile.mkdtemp(prefix="kairos-rl-bench-"))
    for algorithm in ALGORITHMS:
        spec = spec_for(algorithm)
        local = per_check_us(local_counter(spec, 1_000_000), keys, count)
        shared_obj = shared_counter(algorithm, directory / uuid.uuid4().hex)
        shared = per_check_us(shared_obj, keys, count)
        shared_obj.close()
        rows.append(
            f"| {algorithm} | {local:.2f} | {shared:.2f} | {shared - local:+.2f} "
            f"| {shared / PROXIED_REQUEST_US * 100:.1f}% |"
        )
    return rows


def _contend(path: str, count: int, queue: Any) -> None:
    counter = SharedWindowed(spec_for("token_bucket"), Path(path), 100_000)
    started = time.perf_counter()
    for _ in range(count):
        counter.hit("one-hot-key")
    queue.put(count / (time.perf_counter() - started))
    counter.close()


def contention_table(count: int) -> list[str]:
    """Two processes hitting the same key (same stripe lock) at full speed."""
    path = Path(tempfile.mkdtemp(prefix="kairos-rl-bench-")) / "contended"
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    rows = [
        "| processes on one hot key | checks/s per process | total checks/s |",
        "|---|---:|---:|",
    ]
    for processes in (1, 2):
        workers = [
            context.Process(target=_contend, args=(str(path), count, queue))
            for _ in range(processes)
        ]
        for worker in workers:
            worker.start()
        rates = [queue.get() for _ in workers]
        for worker in workers:
            worker.join()
        rows.append(f"| {processes} | {sum(rates) / len(rates):,.0f} | {sum(rates):,.0f} |")
    return rows


async def redis_rate(
    url: str, algorithm: str, concurrency: int, max_batch: int, connections: int, seconds: float
) -> tuple[float, float]:
    """(checks/s, client CPU µs per check) with `concurrency` tasks looping on checks."""
    prefix = f"kairos-bench:{uuid.uuid4().hex[:8]}:"
    settings = RedisSettings(
        url=url, key_prefix=prefix, max_connections=connections, max_batch=max_batch, timeout=5
    )
    link = RedisLink(settings, "bench")
    link.start()
    counter = RedisCounter(spec_for(algorithm), link, "bench")
    done = 0
    stop = time.perf_counter() + seconds

    async def client(index: int) -> None:
        nonlocal done
        key = f"client-{index}"
        while time.perf_counter() < stop:
            decision = await counter.hit(key)
            if algorithm == "concurrency":
                counter.undo(decision)
            done += 1

    await counter.hit("warm-up")
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await link.close()
    admin = Redis.from_url(url)
    keys = [k async for k in admin.scan_iter(match=prefix + "*")]
    if keys:
        await admin.delete(*keys)
    await admin.aclose()
    return done / wall, cpu / max(1, done) * 1e6


async def sequential_rate(url: str, seconds: float) -> float:
    """A plain loop of single EVALSHA calls on one connection (no batching at all)."""
    from kairos_ratelimit.lua import TOKEN_BUCKET
    from kairos_ratelimit.redis_link import script_sha

    client = Redis.from_url(url, max_connections=1)
    await client.script_load(TOKEN_BUCKET)
    sha = script_sha(TOKEN_BUCKET)
    key = f"kairos-bench:{uuid.uuid4().hex[:8]}:seq"
    done, stop = 0, time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < stop:
        await client.evalsha(sha, 1, key, "", "hit", "1", "1000000000", "3600000000", "1000000000")
        done += 1
    rate = done / (time.perf_counter() - started)
    await client.delete(key)
    await client.aclose()
    return rate


async def redis_tables(url: str, seconds: float) -> list[str]:
    rows = [
        "| algorithm | pipelined: 50 concurrent, 4 conns (checks/s) | client CPU µs/check "
        "| unpipelined: 50 concurrent, 4 conns, batch of 1 (checks/s) |",
        "|---|---:|---:|---:|",
    ]
    for algorithm in ALGORITHMS:
        piped, cpu = await redis_rate(url, algorithm, 50, 256, 4, seconds)
        single, _ = await redis_rate(url, algorithm, 50, 1, 4, seconds)
        rows.append(f"| {algorithm} | {piped:,.0f} | {cpu:.1f} | {single:,.0f} |")
    rows.append("")
    rows.append(
        f"Plain `await evalsha(...)` loop, one connection: "
        f"{await sequential_rate(url, seconds):,.0f} checks/s."
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--quick", action="store_true", help="short runs")
    parser.add_argument("--no-redis", action="store_true")
    args = parser.parse_args()
    count = 20_000 if args.quick else 200_000
    seconds = 1.0 if args.quick else 3.0
    print(f"## Memory backend ({os.cpu_count()} cores, {count:,} checks over 1,000 keys)\n")
    print("\n".join(memory_table(count)))
    print("\n## Shared memory under contention (token bucket)\n")
    print("\n".join(contention_table(count)))
    if not args.no_redis:
        print(f"\n## Redis backend ({seconds:.0f} s per cell)\n")
        print("\n".join(asyncio.run(redis_tables(args.redis, seconds))))


if __name__ == "__main__":
    main()
