"""Batching between the request path and the OTLP exporter: enqueue on the loop, export aside.

The request path appends a `SpanRecord` to a bounded deque (dropping, and counting, when it
is full). A task on the event loop wakes when a batch is full or `schedule_delay` passed and
hands batches to one worker thread, which builds the SDK spans and calls the SDK exporter
(encoding, HTTP or gRPC, retries with backoff). At close the queue is flushed, bounded by
`export_timeout`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from kairos_core import GatewayServices
from kairos_otel.config import OtelConfig
from kairos_otel.records import SpanRecord, to_spans

log = logging.getLogger("kairos.otel")

SCOPE_NAME = "kairos_otel"
DEFAULT_SERVICE = "kairos"


def build_resource(config: OtelConfig, services: GatewayServices) -> Resource:
    """SDK defaults and OTEL_* variables, then the configured name and attributes on top."""
    attributes: dict[str, Any] = {}
    if services.instance_id:
        attributes["service.instance.id"] = f"{services.instance_id}-{services.worker_id}"
    attributes.update(config.resource_attributes)
    if config.service_name is not None:
        attributes["service.name"] = config.service_name
    resource = Resource.create(attributes)
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": DEFAULT_SERVICE}))
    return resource


class SpanPipeline:
    """A bounded queue of finished spans and the task and thread that export them."""

    def __init__(
        self,
        config: OtelConfig,
        services: GatewayServices,
        make_exporter: Callable[[OtelConfig], SpanExporter],
        version: str,
    ) -> None:
        self.queue: deque[SpanRecord] = deque()
        self._config = config
        self._services = services
        self._make_exporter = make_exporter
        self._scope = InstrumentationScope(SCOPE_NAME, version)
        self._limit = config.max_queue_size
        self._batch = config.max_export_batch_size
        self._wake = asyncio.Event()
        self._closing = False
        self._users = 0
        self._task: asyncio.Task[None] | None = None
        self._exporter: SpanExporter | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._resource: Resource | None = None
        spans = services.metrics.counter(
            "kairos_otel_spans",
            "Spans by outcome: exported, failed (export error), dropped.",
            ["result"],
        )
        self.exported = spans.labels("exported")
        self.failed = spans.labels("failed")
        self.dropped = spans.labels("dropped")

    def enqueue(self, record: SpanRecord) -> None:
        """Queue one finished span (called on the event loop, per sampled request)."""
        queue = self.queue
        if len(queue) >= self._limit:
            self.dropped.value += 1
            return
        queue.append(record)
        if len(queue) >= self._batch and not self._wake.is_set():
            self._wake.set()

    async def start(self) -> None:
        """Start exporting (the first stage that uses this pipeline starts it)."""
        self._users += 1
        if self._users > 1:
            return
        self._resource = build_resource(self._config, self._services)
        self._exporter = self._make_exporter(self._config)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="kairos-otel")
        self._task = asyncio.create_task(self._run(), name="kairos-otel export")

    async def close(self) -> None:
        """Flush what is queued (bounded by `export_timeout`), then stop (last user only)."""
        self._users -= 1
        if self._users > 0 or self._task is None:
            return
        self._closing = True
        self._wake.set()
        task, exporter, executor = self._task, self._exporter, self._executor
        assert exporter is not None
        assert executor is not None
        try:
            await asyncio.wait_for(asyncio.shield(task), self._config.export_timeout)
        except TimeoutError:
            log.warning("otel: flush did not finish in %.1fs", self._config.export_timeout)
        # Shutting the exporter down aborts its retry wait, so a stuck export returns now.
        await asyncio.get_running_loop().run_in_executor(None, exporter.shutdown)
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if self.queue:
            self.dropped.value += len(self.queue)
            self.queue.clear()
        executor.shutdown(wait=False)
        self._task = None

    async def _run(self) -> None:
        """Export full batches when woken, everything when `schedule_delay` passed or at close."""
        delay = self._config.schedule_delay
        while not self._closing:
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
                full_only = not self._closing
            except TimeoutError:
                full_only = False
            self._wake.clear()
            await self._drain(self._batch if full_only else 1)
        await self._drain(1)

    async def _drain(self, at_least: int) -> None:
        """Export batches while `at_least` spans wait."""
        loop = asyncio.get_running_loop()
        queue = self.queue
        while len(queue) >= at_least and queue:
            count = min(len(queue), self._batch)
            batch = [queue.popleft() for _ in range(count)]
            ok = await loop.run_in_executor(self._executor, self._export, batch)
            (self.exported if ok else self.failed).value += count

    def _export(self, batch: list[SpanRecord]) -> bool:
        """Build the SDK spans and export them (runs in the export thread)."""
        exporter, resource = self._exporter, self._resource
        assert exporter is not None
        assert resource is not None
        try:
            spans: list[ReadableSpan] = []
            for record in batch:
                spans += to_spans(record, resource, self._scope)
            return exporter.export(spans) is SpanExportResult.SUCCESS
        except Exception:
            log.exception("otel: exporting %d spans failed (pid %d)", len(batch), os.getpid())
            return False
