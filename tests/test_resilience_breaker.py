"""Circuit breaker and retry budget state machines, driven by an injectable clock."""

from __future__ import annotations

from kairos_core.config.resilience import CircuitBreakerConfig, RetryBudgetConfig, parse_statuses
from kairos_core.resilience.breaker import BreakerState, CircuitBreaker
from kairos_core.resilience.retry import RetryBudget


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, **settings: object) -> tuple[CircuitBreaker, list[str]]:
    changes: list[str] = []
    cb = CircuitBreaker(CircuitBreakerConfig(**settings), "pool/b1", clock)  # type: ignore[arg-type]
    cb._on_change = lambda: changes.append(cb._state.value)
    return cb, changes


def test_consecutive_failures_trip_and_success_resets_the_count() -> None:
    clock = Clock()
    cb, changes = breaker(clock, consecutive_failures=3)
    for ok in (False, False, True, False, False):
        cb.on_attempt()
        cb.record(ok)
    assert cb.state is BreakerState.CLOSED
    cb.record(False)
    assert cb.state is BreakerState.OPEN
    assert not cb.admits()
    assert changes == ["open"]


def test_open_then_half_open_then_closed() -> None:
    clock = Clock()
    cb, _ = breaker(clock, consecutive_failures=1, open_duration=5, half_open_requests=2)
    cb.record(False)
    assert cb.retry_after() == 5
    clock.now += 4.9
    assert cb.state is BreakerState.OPEN
    clock.now += 0.2
    assert cb.state is BreakerState.HALF_OPEN
    assert cb.admits()
    cb.on_attempt()
    assert cb.admits()
    cb.on_attempt()
    assert not cb.admits()  # at most K concurrent trials
    cb.record(True)
    assert cb.state is BreakerState.CLOSED
    assert cb.admits()


def test_failed_trial_reopens_for_longer_up_to_the_cap() -> None:
    clock = Clock()
    cb, _ = breaker(
        clock, consecutive_failures=1, open_duration=2, backoff_multiplier=3, max_open_duration=10
    )
    cb.record(False)
    durations = []
    for _ in range(4):
        clock.now += cb.retry_after() + 0.01
        assert cb.state is BreakerState.HALF_OPEN
        cb.on_attempt()
        cb.record(False)
        durations.append(round(cb.retry_after(), 2))
    assert durations == [6.0, 10.0, 10.0, 10.0]
    clock.now += 10.01
    cb.on_attempt()
    cb.record(True)
    cb.record(False)
    assert round(cb.retry_after(), 2) == 2.0  # success reset the growth


def test_error_rate_with_minimum_volume() -> None:
    clock = Clock()
    cb, _ = breaker(clock, consecutive_failures=100, error_rate=0.5, window=10, min_requests=10)
    for index in range(9):
        cb.record(index % 2 == 0)
        clock.now += 0.1
    assert cb.state is BreakerState.CLOSED  # 9 requests: under the minimum volume
    cb.record(False)
    assert cb.state is BreakerState.OPEN  # 5 failures out of 10


def test_error_rate_forgets_old_windows() -> None:
    clock = Clock()
    cb, _ = breaker(clock, consecutive_failures=100, error_rate=0.5, window=10, min_requests=4)
    cb.record(False)
    cb.record(False)
    clock.now += 30
    cb.record(True)
    cb.record(True)
    cb.record(False)
    assert cb.state is BreakerState.CLOSED  # only 1 of 3 recent requests failed


def test_status_ranges() -> None:
    assert parse_statuses([502, "500-503"]) == frozenset({500, 501, 502, 503})


def test_retry_budget_caps_retries_to_a_share_of_requests() -> None:
    clock = Clock()
    budget = RetryBudget(RetryBudgetConfig(ratio=0.1, window=10, min_retries=2), clock)
    for _ in range(100):
        budget.note_request()
    granted = sum(budget.try_spend() for _ in range(50))
    assert granted == 12  # 2 + 10% of 100
    clock.now += 25  # two windows later the budget is fresh
    budget.note_request()
    assert budget.try_spend()
