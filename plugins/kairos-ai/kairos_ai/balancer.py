"""The `ai` balancer: ask a model which backend fits a request; fall back whenever it cannot say."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kairos_ai.cache import DecisionCache
from kairos_ai.config import AiBalancerConfig, BackendDescription
from kairos_ai.fallback import STRATEGIES
from kairos_ai.guard import EndpointBreaker
from kairos_ai.llm import ModelAnswer, ModelClient
from kairos_ai.observe import DecisionRecorder, NullRecorder
from kairos_ai.privacy import Redactor
from kairos_ai.prompt import CandidatePrompt, PromptBuilder
from kairos_ai.sample import RequestSample, SampleReader
from kairos_core import Backend, GatewayServices, RequestContext, UpstreamPool

log = logging.getLogger("kairos.ai")

DECISION_KEY = "ai_decision"
"""Where the decision is left in `ctx.state` (for `ai-decision-header` and other stages)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """Which backend a request got and how: source `ai`, `cache` or `fallback` (with a reason)."""

    backend: str
    source: str
    reason: str = ""

    def header_value(self, with_reason: bool = True) -> str:
        """`ai; backend=b1` or `fallback; backend=b2; reason=timeout`."""
        value = f"{self.source}; backend={self.backend}"
        if with_reason and self.reason:
            value += f"; reason={self.reason}"
        return value


class AiBalancer:
    """Chooses a backend per request from a model's structured answer (AsyncBalancer)."""

    def __init__(
        self,
        config: AiBalancerConfig,
        pool: UpstreamPool,
        *,
        clock: Callable[[], float] = time.monotonic,
        env: Mapping[str, str] = os.environ,
    ) -> None:
        self.config = config
        self.pool = pool
        self._by_name = {b.name: b for b in pool.backends}
        self.reader = SampleReader(config.request, config.cache, Redactor(config.privacy))
        self.prompts = PromptBuilder(config.instruction, _descriptions(config.backends, pool))
        self.model = ModelClient(config.endpoint, config.timeout, env)
        self.breaker = EndpointBreaker(
            config.breaker.failures, config.breaker.open_for, f"upstream {pool.name!r}", clock
        )
        self.cache = DecisionCache(config.cache.ttl, config.cache.max_entries, clock)
        self.timeout = config.timeout
        self.max_concurrent = config.max_concurrent
        self._fallback = STRATEGIES[config.fallback]()
        self._inflight: dict[Hashable, asyncio.Task[ModelAnswer]] = {}
        self._tasks: set[asyncio.Task[ModelAnswer]] = set()
        self.recorder: DecisionRecorder | NullRecorder = NullRecorder()

    def bind(self, services: GatewayServices) -> None:
        """Count into the gateway's metrics (called at start-up, before traffic)."""
        self.recorder = DecisionRecorder(services.metrics, self.pool.name, self.breaker)

    def pick(self, ctx: RequestContext | None, candidates: Sequence[Backend]) -> Backend | None:
        """The fallback strategy (the core calls this when `pick_async` is not used)."""
        return self._fallback(candidates)

    async def pick_async(
        self, ctx: RequestContext | None, candidates: Sequence[Backend]
    ) -> Backend | None:
        """The model's choice, a cached one, or the fallback's; never raises for the model's sake."""
        try:
            backend, decision = await self._decide(ctx, candidates)
        except Exception:
            log.exception("ai balancer of upstream %r failed; the fallback decides", self.pool.name)
            backend = self._fallback(candidates)
            decision = Decision(backend.name, "fallback", "internal_error")
        self.recorder.decision(decision.backend, decision.source, decision.reason)
        if ctx is not None:
            ctx.state[DECISION_KEY] = decision
        return backend

    async def _decide(
        self, ctx: RequestContext | None, candidates: Sequence[Backend]
    ) -> tuple[Backend, Decision]:
        if ctx is None:
            return self._fall_back(candidates, "no_request")
        reader = self.reader
        sample = reader.from_context(ctx)
        body_wanted = reader.wants_body(sample)
        key: tuple[str, ...] | None = None
        if self.cache.enabled:
            if reader.key_needs_body and body_wanted:
                sample, failed = await self._with_body(ctx, sample)
                if failed:
                    return self._fall_back(candidates, "body_error")
            key = reader.cache_key(sample)
            cached = self._cached(key, candidates)
            if cached is not None:
                return cached, Decision(cached.name, "cache")
        names = tuple(b.name for b in candidates)
        flight_key = (key, names) if key is not None else None
        task = self._inflight.get(flight_key) if flight_key is not None else None
        if task is None and body_wanted and sample.body is None:
            sample, failed = await self._with_body(ctx, sample)
            if failed:
                return self._fall_back(candidates, "body_error")
            task = self._inflight.get(flight_key) if flight_key is not None else None
        if task is None:  # no await from here to the call's start: the cap holds exactly
            if len(self._tasks) >= self.max_concurrent:
                return self._fall_back(candidates, "busy")
            if not self.breaker.admits():
                return self._fall_back(candidates, "breaker_open")
            task = self._start_call(sample, names, key, flight_key)
        try:
            answer = await asyncio.shield(task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # this request itself is being cancelled
            return self._fall_back(candidates, "cancelled")  # the call was (balancer closed)
        if answer.failure is not None:
            return self._fall_back(candidates, answer.failure)
        backend = self._by_name.get(answer.backend or "")
        if backend is None:
            return self._fall_back(candidates, "unknown_backend")
        if backend not in candidates or not backend.available:
            return self._fall_back(candidates, "unavailable_backend")
        return backend, Decision(backend.name, "ai")

    def _cached(self, key: tuple[str, ...], candidates: Sequence[Backend]) -> Backend | None:
        name = self.cache.get(key)
        if name is None:
            return None
        backend = self._by_name.get(name)
        if backend is None or backend not in candidates or not backend.available:
            return None
        return backend

    async def _with_body(
        self, ctx: RequestContext, sample: RequestSample
    ) -> tuple[RequestSample, bool]:
        try:
            return await self.reader.read_body(ctx, sample), False
        except Exception as exc:  # too large, client stalled or gone: the proxy reports it
            log.debug("ai balancer could not read the body excerpt: %r", exc)
            return sample, True

    def _fall_back(self, candidates: Sequence[Backend], reason: str) -> tuple[Backend, Decision]:
        backend = self._fallback(candidates)
        return backend, Decision(backend.name, "fallback", reason)

    def _start_call(
        self,
        sample: RequestSample,
        names: tuple[str, ...],
        key: tuple[str, ...] | None,
        flight_key: Hashable | None,
    ) -> asyncio.Task[ModelAnswer]:
        candidate = self.prompts.for_candidates(names)
        messages = self.prompts.messages(candidate, self.reader.document(sample))
        task = asyncio.ensure_future(self._call(candidate, messages, key))
        self._tasks.add(task)
        if flight_key is not None:
            self._inflight[flight_key] = task

        def done(_: asyncio.Task[ModelAnswer]) -> None:
            self._tasks.discard(task)
            if flight_key is not None and self._inflight.get(flight_key) is task:
                del self._inflight[flight_key]

        task.add_done_callback(done)
        return task

    async def _call(
        self,
        candidate: CandidatePrompt,
        messages: list[dict[str, str]],
        key: tuple[str, ...] | None,
    ) -> ModelAnswer:
        """One guarded model call: timeout, breaker bookkeeping, metrics, cache fill."""
        debug = log.isEnabledFor(logging.DEBUG)
        if debug:
            log.debug("ai %s prompt: %s", self.pool.name, json.dumps(messages, ensure_ascii=False))
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                answer = await self.model.ask(candidate, messages)
        except TimeoutError:
            answer = ModelAnswer(None, "timeout", time.perf_counter() - started, detail="timed out")
        except Exception as exc:
            answer = ModelAnswer(None, "error", time.perf_counter() - started, detail=repr(exc))
        self.breaker.record(answer.failure is None)
        self.recorder.call(answer)
        if debug:
            log.debug(
                "ai %s answer (%.1f ms): %s%s",
                self.pool.name,
                answer.seconds * 1000,
                answer.detail,
                f" [{answer.failure}]" if answer.failure else "",
            )
        if key is not None and answer.backend in candidate.names:
            self.cache.put(key, answer.backend)
        return answer

    def describe(
        self, sample: Mapping[str, Any], live: bool = False
    ) -> dict[str, Any] | Awaitable[dict[str, Any]]:
        """What would be sent to the model for `sample` (and, live, what it answers)."""
        request = self.reader.from_mapping(sample)
        candidates = self.pool.candidates or self.pool.backends
        names = tuple(b.name for b in candidates)
        candidate = self.prompts.for_candidates(names)
        document = self.reader.document(request)
        messages = self.prompts.messages(candidate, document)
        endpoint = self.config.endpoint
        mode = self.model.mode
        described: dict[str, Any] = {
            "balancer": "ai",
            "endpoint": endpoint.base_url,
            "model": endpoint.model,
            "mode": endpoint.mode if endpoint.mode != "auto" else f"auto ({mode} first)",
            "timeout": self.timeout,
            "fallback": self.config.fallback,
            "cache_key": list(self.config.cache.key) if self.cache.enabled else None,
            "candidates": list(names),
            "request": document,
            "messages": messages,
        }
        if mode == "json_schema":
            described["response_format"] = candidate.response_format
        else:
            described["tools"] = candidate.tools
        if not live:
            return described

        async def ask() -> dict[str, Any]:
            answer = await self._call(candidate, messages, None)
            backend = answer.backend if answer.backend in names else None
            described["answer"] = {
                "backend": backend,
                "source": "ai" if backend else "fallback",
                "reason": answer.failure
                or ("" if backend else "unknown_backend" if answer.backend else "no_answer"),
                "latency_ms": round(answer.seconds * 1000, 1),
                "prompt_tokens": answer.prompt_tokens,
                "completion_tokens": answer.completion_tokens,
                "raw": answer.detail,
            }
            return described

        return ask()

    async def start(self) -> None:
        """Prepare the model client, so the first decision is not eaten by its set-up."""
        self.model.warm_up()

    async def close(self) -> None:
        """Cancel calls in flight and close the endpoint client."""
        for task in list(self._tasks):
            task.cancel()
        await self.model.close()


def _descriptions(
    configured: Mapping[str, BackendDescription], pool: UpstreamPool
) -> dict[str, BackendDescription]:
    """Descriptions by backend name; keys may be a backend's name or URL."""
    found: dict[str, BackendDescription] = {}
    for key, description in configured.items():
        wanted = key.rstrip("/")
        match = next((b for b in pool.backends if wanted in (b.name, b.url, b.config.url)), None)
        if match is None:
            known = ", ".join(b.name for b in pool.backends)
            raise ValueError(f"backends: {key!r} is not a backend of this pool (it has: {known})")
        found[match.name] = description
    return found
