"""Hypothesis settings shared by the property tests: reproducible, bounded, no example database."""

from __future__ import annotations

from hypothesis import HealthCheck, settings


def bounded(max_examples: int, *also_suppress: HealthCheck) -> settings:
    """`max_examples` derandomized examples, no deadline or database (same run in CI as locally)."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, *also_suppress],
    )
