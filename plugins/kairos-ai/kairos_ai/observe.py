"""Metrics of the `ai` balancer: decisions by backend and source, model latency, tokens."""

from __future__ import annotations

from typing import Any

from kairos_ai.guard import EndpointBreaker
from kairos_ai.llm import ModelAnswer

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0)


class DecisionRecorder:
    """Counts into `services.metrics`; children are created once per label set and kept."""

    def __init__(self, metrics: Any, pool: str, breaker: EndpointBreaker) -> None:
        self.pool = pool
        self._decisions = metrics.counter(
            "kairos_ai_decisions",
            "Backends chosen by the ai balancer, by source (ai, cache, fallback) and fallback reason.",
            ("pool", "backend", "source", "reason"),
        )
        self._latency = metrics.histogram(
            "kairos_ai_llm_latency_seconds",
            "Time the model endpoint took per decision call, by outcome.",
            ("pool", "outcome"),
            buckets=LATENCY_BUCKETS,
        )
        tokens = metrics.counter(
            "kairos_ai_llm_tokens",
            "Tokens used by the ai balancer's model calls.",
            ("pool", "kind"),
        )
        self._prompt_tokens = tokens.labels(pool, "prompt")
        self._completion_tokens = tokens.labels(pool, "completion")
        metrics.gauge(
            "kairos_ai_llm_breaker_state",
            "Circuit breaker around the model endpoint: 0 closed, 1 open, 2 half-open.",
            ("pool",),
        ).labels(pool).set_function(breaker.state_value)
        self._children: dict[tuple[str, str, str], Any] = {}
        self._outcomes: dict[str, Any] = {}

    def decision(self, backend: str, source: str, reason: str) -> None:
        """One request's backend and how it was chosen."""
        key = (backend, source, reason)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._decisions.labels(self.pool, *key)
        child.inc()

    def call(self, answer: ModelAnswer) -> None:
        """One model call: its latency by outcome and the tokens it used."""
        outcome = answer.failure or "ok"
        child = self._outcomes.get(outcome)
        if child is None:
            child = self._outcomes[outcome] = self._latency.labels(self.pool, outcome)
        child.observe(answer.seconds)
        if answer.prompt_tokens:
            self._prompt_tokens.inc(answer.prompt_tokens)
        if answer.completion_tokens:
            self._completion_tokens.inc(answer.completion_tokens)


class NullRecorder:
    """Stands in until the gateway's metrics are bound (e.g. in `kairos routes test`)."""

    def decision(self, backend: str, source: str, reason: str) -> None:
        """Discard."""

    def call(self, answer: ModelAnswer) -> None:
        """Discard."""
