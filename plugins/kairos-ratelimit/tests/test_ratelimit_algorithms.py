"""Each algorithm's exact behaviour at window edges, identical in memory, shared memory and Redis.

The clock is injected (integer microseconds); the Redis scripts get it as an argument, so
the real Redis runs the same scenarios without any sleeping.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from kairos_ratelimit.algorithms import Decision
from kairos_ratelimit.config import LimitSpec, RedisSettings
from kairos_ratelimit.memory import local_counter
from kairos_ratelimit.redis_counter import RedisCounter
from kairos_ratelimit.redis_link import RedisLink
from kairos_ratelimit.shared_counters import SharedConcurrency, SharedLog, SharedWindowed
from redis.asyncio import Redis

from kairos_core.testing import redis_available, require_service

BASE = 1_700_000_000_000_000  # an epoch-like time in microseconds, aligned to every window

# (time after BASE in µs, allowed, remaining, retry_us when refused)
Step = tuple[int, bool, int, int]

SCENARIOS: dict[str, tuple[dict[str, Any], list[Step]]] = {
    "fixed_window": (
        {"limit": 3, "window": 1},
        [
            (0, True, 2, 0),
            (500_000, True, 1, 0),
            (999_999, True, 0, 0),
            (999_999, False, 0, 1),  # one microsecond before the next window
            (1_000_000, True, 2, 0),  # the window edge: a fresh budget
            (1_000_000, True, 1, 0),
        ],
    ),
    "sliding_window_log": (
        {"limit": 3, "window": 1},
        [
            (0, True, 2, 0),
            (200_000, True, 1, 0),
            (400_000, True, 0, 0),
            (500_000, False, 0, 500_000),  # the request at 0 leaves the window at 1.0
            (999_999, False, 0, 1),
            (1_000_000, True, 0, 0),  # exactly one window later: that request no longer counts
            (1_100_000, False, 0, 100_000),
            (1_200_000, True, 0, 0),
        ],
    ),
    "sliding_window_counter": (
        {"limit": 4, "window": 1},
        [
            (100_000, True, 3, 0),
            (200_000, True, 2, 0),
            (300_000, True, 1, 0),
            (400_000, True, 0, 0),
            (500_000, False, 0, 750_000),  # next window, once 3/4 of this one's weight is gone
            (1_249_999, False, 0, 1),
            (1_250_000, True, 0, 0),  # 4 * 0.75 + 0 + 1 = 4
            (1_500_000, True, 0, 0),  # 4 * 0.5 + 1 + 1 = 4
            (1_500_000, False, 0, 250_000),  # 4 * 0.5 + 2 + 1 = 5
            (1_750_000, True, 0, 0),
        ],
    ),
    "token_bucket": (
        {"limit": 2, "window": 1, "burst": 3},
        [
            (0, True, 2, 0),
            (0, True, 1, 0),
            (0, True, 0, 0),
            (0, False, 0, 500_000),  # one token every 0.5s
            (499_999, False, 0, 1),
            (500_000, True, 0, 0),
            (750_000, False, 0, 250_000),
            (1_000_000, True, 0, 0),
            (3_000_000, True, 2, 0),  # refilled to the burst, not beyond
        ],
    ),
    "gcra": (
        {"limit": 2, "window": 1, "burst": 3},
        [
            (0, True, 2, 0),
            (0, True, 1, 0),
            (0, True, 0, 0),
            (0, False, 0, 500_000),
            (499_999, False, 0, 1),
            (500_000, True, 0, 0),
            (750_000, False, 0, 250_000),
            (1_000_000, True, 0, 0),
            (3_000_000, True, 2, 0),
        ],
    ),
}


class Clock:
    """A settable clock in microseconds."""

    def __init__(self) -> None:
        self.now = BASE

    def __call__(self) -> int:
        return self.now


Factory = Callable[[LimitSpec, Clock], Any]


def memory_factory(spec: LimitSpec, clock: Clock) -> Any:
    return local_counter(spec, 1000, clock)


def shared_factory(directory: Path) -> Factory:
    def make(spec: LimitSpec, clock: Clock) -> Any:
        path = directory / f"seg-{uuid.uuid4().hex}"
        if spec.algorithm == "concurrency":
            return SharedConcurrency(spec, path, 1000, 0, 2)
        if spec.algorithm == "sliding_window_log":
            return SharedLog(spec, path, 1000, clock)
        return SharedWindowed(spec, path, 1000, clock)

    return make


@asynccontextmanager
async def redis_link(prefix: str) -> AsyncIterator[RedisLink]:
    """A link to the local Redis whose keys are deleted afterwards."""
    require_service("Redis on 127.0.0.1:6379", redis_available(), "start redis-server")
    url = "redis://127.0.0.1:6379/0"
    link = RedisLink(RedisSettings(url=url, key_prefix=prefix, timeout=2.0), "test")
    link.start()
    try:
        yield link
    finally:
        await link.close()
        client = Redis.from_url(url)
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest_asyncio.fixture(params=["memory", "shared", "redis"])
async def factory(request: pytest.FixtureRequest, private_dir: Path) -> AsyncIterator[Factory]:
    """Makes counters of one backend: in-process, shared memory, or the real Redis."""
    if request.param == "memory":
        yield memory_factory
    elif request.param == "shared":
        yield shared_factory(private_dir)
    else:
        async with redis_link(f"kairos-test:{uuid.uuid4().hex}:") as link:
            yield lambda spec, clock: RedisCounter(spec, link, "t", clock)


async def _hit(counter: Any, key: str) -> Decision:
    if isinstance(counter, RedisCounter):
        return await counter.hit(key)
    decision: Decision = counter.hit(key)
    return decision


@pytest.mark.parametrize("algorithm", sorted(SCENARIOS))
async def test_window_edges(algorithm: str, factory: Factory) -> None:
    settings, steps = SCENARIOS[algorithm]
    clock = Clock()
    counter = factory(LimitSpec(algorithm=algorithm, **settings), clock)
    for index, (at, allowed, remaining, retry) in enumerate(steps):
        clock.now = BASE + at
        decision = await _hit(counter, "client-a")
        got = (decision.allowed, decision.remaining, decision.retry_us)
        assert got == (allowed, remaining, retry), f"step {index} at +{at}us: {decision}"
    other = await _hit(counter, "client-b")  # keys are independent
    assert other.allowed
    assert other.remaining == (settings.get("burst") or settings["limit"]) - 1


@pytest.mark.parametrize("algorithm", sorted(SCENARIOS))
async def test_undo_gives_the_units_back(algorithm: str, factory: Factory) -> None:
    settings, _ = SCENARIOS[algorithm]
    clock = Clock()
    counter = factory(LimitSpec(algorithm=algorithm, **settings), clock)
    first = await _hit(counter, "k")
    counter.undo(first)
    if isinstance(counter, RedisCounter):
        await counter.hit("warm")  # the undo is fire-and-forget: let its batch go first
    again = await _hit(counter, "k")
    assert again.remaining == first.remaining


async def test_concurrency_counts_in_flight(factory: Factory) -> None:
    counter = factory(LimitSpec(algorithm="concurrency", limit=2), Clock())
    first, second = await _hit(counter, "k"), await _hit(counter, "k")
    assert (first.allowed, first.remaining, second.allowed, second.remaining) == (True, 1, True, 0)
    third = await _hit(counter, "k")
    assert not third.allowed
    counter.undo(first)
    counter.undo(first)  # releasing twice frees one slot only
    if isinstance(counter, RedisCounter):
        await counter.hit("warm")
    fourth = await _hit(counter, "k")
    assert fourth.allowed
    assert not (await _hit(counter, "k")).allowed


async def test_cost_counts_several_units(factory: Factory) -> None:
    clock = Clock()
    counter = factory(LimitSpec(algorithm="fixed_window", limit=5, window=1, cost=2), clock)
    assert [(await _hit(counter, "k")).remaining for _ in range(2)] == [3, 1]
    assert not (await _hit(counter, "k")).allowed


async def test_redis_server_clock_is_the_default() -> None:
    async with redis_link(f"kairos-test:{uuid.uuid4().hex}:") as link:
        counter = RedisCounter(LimitSpec(rate="2/h", algorithm="gcra"), link, "server-clock")
        decisions = [await counter.hit("k") for _ in range(3)]
    assert [d.allowed for d in decisions] == [True, True, False]
    assert 1_790_000_000 < decisions[2].retry_us <= 1_800_000_000  # one interval: 30 minutes


def test_memory_evicts_oldest_keys_beyond_max_keys() -> None:
    clock = Clock()
    counter = local_counter(LimitSpec(rate="1/h", algorithm="fixed_window"), 16, clock)
    for n in range(40):
        assert counter.hit(f"k{n}").allowed
    assert counter.evictions > 0
    assert len(counter.table) <= 16  # type: ignore[attr-defined]
    assert not counter.hit("k39").allowed  # recent keys are kept
