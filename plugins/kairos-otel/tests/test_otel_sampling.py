"""Sampling: ratio on new traces (decided from the trace id), the client's flag on joined ones."""

from __future__ import annotations

from typing import Any

import kairos_otel
from kairos_otel.testing import OtlpReceiver, parse_traceparent

from kairos_core.testing import running_gateway

LOW_TRACE = "4bf92f3577b34da6" + "0000000000000001"  # low 64 bits tiny: sampled at any ratio > 0
HIGH_TRACE = "4bf92f3577b34da6" + "ffffffffffffff00"  # low 64 bits huge: sampled only at 1.0
CLIENT_SPAN = "00f067aa0ba902b7"


async def send_all(url: str, http: Any, header_sets: list[dict[str, str]]) -> None:
    """One GET per header set; all must succeed."""
    for headers in header_sets:
        async with http.get(url + "/s", headers=headers) as response:
            assert response.status == 200


async def test_ratio_zero_exports_nothing_and_tells_the_upstream(
    echo_backend, receiver: OtlpReceiver, otel_gateway_config, http
) -> None:
    config = otel_gateway_config(echo_backend.url, receiver.url, sample_ratio=0.0)
    async with running_gateway(config, [kairos_otel]) as gw:
        await send_all(gw.url, http, [{}] * 5)
        await send_all(gw.url, http, [{"traceparent": f"00-{LOW_TRACE}-{CLIENT_SPAN}-00"}])
    # the gateway stopped, so its queue was flushed: nothing was queued
    assert receiver.spans == []
    assert receiver.requests == []
    for record in echo_backend.records:
        assert parse_traceparent(record.headers["traceparent"])[2] == "00"


async def test_parent_based_follows_a_sampled_client(
    echo_backend, receiver: OtlpReceiver, otel_gateway_config, http
) -> None:
    config = otel_gateway_config(echo_backend.url, receiver.url, sample_ratio=0.0)
    async with running_gateway(config, [kairos_otel]) as gw:
        await send_all(gw.url, http, [{"traceparent": f"00-{HIGH_TRACE}-{CLIENT_SPAN}-01"}])
        (exported,) = await receiver.wait_for(1)
    assert exported.trace_id == HIGH_TRACE
    assert exported.parent_span_id == CLIENT_SPAN
    assert parse_traceparent(echo_backend.records[-1].headers["traceparent"])[2] == "01"


async def test_ratio_without_parent_based_overrides_the_client_flag(
    echo_backend, receiver: OtlpReceiver, otel_gateway_config, http
) -> None:
    config = otel_gateway_config(
        echo_backend.url, receiver.url, sample_ratio=0.5, parent_based=False
    )
    async with running_gateway(config, [kairos_otel]) as gw:
        await send_all(
            gw.url,
            http,
            [
                {"traceparent": f"00-{HIGH_TRACE}-{CLIENT_SPAN}-01"},  # said yes: we say no
                {"traceparent": f"00-{LOW_TRACE}-{CLIENT_SPAN}-00"},  # said no: we say yes
            ],
        )
    assert [s.trace_id for s in receiver.spans] == [LOW_TRACE]
    flags = [parse_traceparent(r.headers["traceparent"])[2] for r in echo_backend.records]
    assert flags == ["00", "01"]


async def test_ratio_decides_by_trace_id_like_the_sdk(
    echo_backend, receiver: OtlpReceiver, otel_gateway_config, http
) -> None:
    from opentelemetry.sdk.trace.sampling import Decision, TraceIdRatioBased

    sdk = TraceIdRatioBased(0.5)
    config = otel_gateway_config(echo_backend.url, receiver.url, sample_ratio=0.5)
    async with running_gateway(config, [kairos_otel]) as gw:
        await send_all(gw.url, http, [{}] * 40)
    expected = set()
    for record in echo_backend.records:
        trace_id, _, flags = parse_traceparent(record.headers["traceparent"])
        decision = sdk.should_sample(None, int(trace_id, 16), "x").decision
        sampled = decision is Decision.RECORD_AND_SAMPLE
        assert flags == ("01" if sampled else "00")
        if sampled:
            expected.add(trace_id)
    assert 0 < len(expected) < 40  # 2**-40 odds of a false failure
    assert {s.trace_id for s in receiver.spans} == expected


async def test_core_tracing_off_is_a_config_error(
    kairos_gateway, echo_backend, otel_gateway_config
) -> None:
    import pytest

    config = otel_gateway_config(echo_backend.url, "http://127.0.0.1:4318")
    config["observability"] = {"tracing": {"enabled": False}}
    with pytest.raises(Exception, match=r"plugins\[0\]\.config.*observability\.tracing\.enabled"):
        await kairos_gateway(config, [kairos_otel])
