"""Export never gets in the way of requests: collector down, queue full, flush at shutdown."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import kairos_otel
from kairos_otel.testing import OtlpReceiver, free_port, parse_traceparent

from kairos_core.testing import running_gateway


async def span_counts(http: Any, admin_url: str) -> dict[str, float]:
    """`kairos_otel_spans_total` by result, read from the admin API's Prometheus page."""
    async with http.get(admin_url + "/metrics") as response:
        text = await response.text()
    found = re.findall(r'^kairos_otel_spans_total\{result="(\w+)"\} (\S+)$', text, re.M)
    return {result: float(value) for result, value in found}


async def wait_until(condition: Any, timeout: float = 10.0) -> None:
    """Poll an async condition every 20 ms until it holds."""
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.02)


async def test_collector_down_then_up(
    kairos_gateway, echo_backend, receiver_factory, otel_gateway_config, http
) -> None:
    port = free_port()
    config = otel_gateway_config(
        echo_backend.url,
        f"http://127.0.0.1:{port}",
        export_timeout=0.5,
        max_queue_size=4,
        max_export_batch_size=2,
    )
    gw = await kairos_gateway(config, [kairos_otel])
    assert gw.admin_url is not None

    async def one() -> int:
        async with http.get(gw.url + "/down") as response:
            return response.status

    # at once, so spans end faster than the 4-span queue drains (even on a slow machine)
    assert await asyncio.gather(*(one() for _ in range(30))) == [200] * 30

    async def failed_and_dropped() -> bool:
        counts = await span_counts(http, gw.admin_url)
        return counts.get("failed", 0) > 0 and counts.get("dropped", 0) > 0

    await wait_until(failed_and_dropped)
    counts = await span_counts(http, gw.admin_url)
    assert counts.get("exported", 0) == 0
    assert counts["failed"] + counts["dropped"] <= 30

    receiver: OtlpReceiver = await receiver_factory(port=port)
    await asyncio.sleep(0.6)  # let an export that was retrying give up
    traces = []
    for _ in range(3):
        async with http.get(gw.url + "/up") as response:
            assert response.status == 200
        traces.append(parse_traceparent(echo_backend.records[-1].headers["traceparent"])[0])

    async def recovered() -> bool:
        return all(receiver.by_trace(t) for t in traces)

    await wait_until(recovered)

    async def counted() -> bool:  # the exporter counts a batch once the collector has answered
        return (await span_counts(http, gw.admin_url)).get("exported", 0) >= 3

    await wait_until(counted)


async def test_flush_on_shutdown(
    echo_backend, receiver: OtlpReceiver, otel_gateway_config, http
) -> None:
    config = otel_gateway_config(echo_backend.url, receiver.url, schedule_delay=60.0)
    async with running_gateway(config, [kairos_otel]) as gw:
        for _ in range(3):
            async with http.get(gw.url + "/late") as response:
                assert response.status == 200
        await asyncio.sleep(0.2)
        assert receiver.spans == []  # neither a full batch nor the delay: still queued
    assert len(receiver.spans) == 3
    sent = {parse_traceparent(r.headers["traceparent"])[0] for r in echo_backend.records}
    assert {s.trace_id for s in receiver.spans} == sent


async def test_full_batches_go_out_before_the_delay(
    echo_backend, receiver: OtlpReceiver, otel_gateway_config, http
) -> None:
    config = otel_gateway_config(
        echo_backend.url, receiver.url, schedule_delay=60.0, max_export_batch_size=4
    )
    async with running_gateway(config, [kairos_otel]) as gw:
        for _ in range(8):
            async with http.get(gw.url + "/batch") as response:
                assert response.status == 200
        await receiver.wait_for(8)
        assert [len(r.resource_spans[0].scope_spans[0].spans) for r in receiver.requests] == [4, 4]


async def test_shutdown_with_collector_down_is_bounded(
    echo_backend, otel_gateway_config, http
) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    config = otel_gateway_config(
        echo_backend.url, endpoint, schedule_delay=60.0, export_timeout=0.3
    )
    async with running_gateway(config, [kairos_otel]) as gw:
        for _ in range(3):
            async with http.get(gw.url + "/gone") as response:
                assert response.status == 200
        otel = gw.gateway.runtime.services.metrics.families["kairos_otel_spans"]
    # stopping flushed (and failed) within export_timeout; the test's timeout guards the bound
    assert otel.labels("failed").value + otel.labels("dropped").value == 3


async def test_reload_flushes_the_old_pipeline_and_starts_a_new_one(
    kairos_gateway, echo_backend, receiver: OtlpReceiver, otel_gateway_config, http
) -> None:
    config = otel_gateway_config(echo_backend.url, receiver.url, schedule_delay=60.0)
    gw = await kairos_gateway(config, [kairos_otel])
    async with http.get(gw.url + "/before") as response:
        assert response.status == 200
    config["plugins"][0]["config"]["service_name"] = "after-reload"
    await gw.reload(config)
    async with http.get(gw.url + "/after") as response:
        assert response.status == 200
    (old,) = await receiver.wait_for(1)  # the retired configuration flushed its queue
    assert (old.attributes["url.path"], old.resource["service.name"]) == ("/before", "kairos")
    await gw.gateway.stop(2.0)
    new = receiver.spans[1]
    assert (new.attributes["url.path"], new.resource["service.name"]) == ("/after", "after-reload")
