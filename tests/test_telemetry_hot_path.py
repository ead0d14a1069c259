"""The per-request telemetry helpers: request counters, log timestamps and durations."""

from __future__ import annotations

import time

import pytest

from kairos_core.metrics import Metrics
from kairos_core.telemetry import access_log
from kairos_core.telemetry.core_metrics import CoreMetrics, RouteStats
from kairos_core.telemetry.observer import _milliseconds


def test_request_counters_by_method_and_status_class() -> None:
    core = CoreMetrics(Metrics())
    stats = RouteStats(core, "r")
    for method, status in [("GET", 200), ("GET", 204), ("POST", 503), ("BREW", 418)]:
        stats.record(method, status, 0.01, 0, 10)
    children = core.requests.children
    assert children[("r", "GET", "2xx")].value == 2
    assert children[("r", "POST", "5xx")].value == 1
    assert children[("r", "OTHER", "4xx")].value == 1


def test_made_up_methods_do_not_grow_the_route_cache() -> None:
    core = CoreMetrics(Metrics())
    stats = RouteStats(core, "r")
    for i in range(5000):
        stats.record(f"M{i}", 200, 0.001, 0, 1)
    assert len(stats._requests) == 0
    assert core.requests.children[("r", "OTHER", "2xx")].value == 5000


def test_log_timestamps_match_strftime(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = access_log._Clock()
    for stamp in (1_700_000_000.0, 1_700_000_000.0009, 1_700_000_000.5, 1_700_000_001.9999):
        monkeypatch.setattr(time, "time", lambda stamp=stamp: stamp)
        expected = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(stamp)))
        assert clock.now() == f"{expected}.{int((stamp - int(stamp)) * 1000):03d}Z"


@pytest.mark.parametrize("seconds", [0.0, 0.0000004, 0.0000005, 0.000123456, 0.25, 1.5, 31.0])
def test_milliseconds_round_to_the_microsecond(seconds: float) -> None:
    assert _milliseconds(seconds) == pytest.approx(round(seconds * 1000, 3), abs=0.0010001)
    assert len(repr(_milliseconds(seconds)).partition(".")[2]) <= 3
