"""Spans exported through a real gateway carry the ids the upstream saw, attributes and status."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import kairos_otel
from kairos_otel.testing import OtlpReceiver, free_port, parse_traceparent
from opentelemetry.proto.trace.v1.trace_pb2 import Span, SpanFlags, Status

from kairos_core import (
    BuildContext,
    Handler,
    Middleware,
    NoConfig,
    RequestContext,
    Response,
    StagePlugin,
    hookimpl,
)

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


async def test_new_trace_span_has_the_ids_sent_upstream(
    kairos_gateway, echo_backend, receiver: OtlpReceiver, otel_gateway_config, http
) -> None:
    gw = await kairos_gateway(otel_gateway_config(echo_backend.url, receiver.url), [kairos_otel])
    before = time.time_ns()
    async with http.get(gw.url + "/items/7?q=1", headers={"User-Agent": "otel-test/1"}) as response:
        assert response.status == 200
        request_id = response.headers["X-Request-Id"]
    after = time.time_ns()
    trace_id, span_id, flags = parse_traceparent(echo_backend.records[-1].headers["traceparent"])
    assert flags == "01"
    (exported,) = await receiver.wait_for(1)
    assert (exported.trace_id, exported.span_id) == (trace_id, span_id)
    assert exported.parent_span_id == ""
    span = exported.span
    assert span.kind == Span.SPAN_KIND_SERVER
    assert span.name == "GET api"
    assert before <= span.start_time_unix_nano <= span.end_time_unix_nano <= after
    assert span.status.code == Status.STATUS_CODE_UNSET
    assert span.flags & SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK == 0
    host, port = gw.url.removeprefix("http://").split(":")
    backend = next(iter(gw.gateway.runtime.pools.values())).backends[0]
    assert exported.attributes == {
        "http.request.method": "GET",
        "url.path": "/items/7",
        "url.scheme": "http",
        "http.route": "api",
        "http.response.status_code": 200,
        "server.address": host,
        "server.port": int(port),
        "client.address": "127.0.0.1",
        "user_agent.original": "otel-test/1",
        "network.protocol.version": "1.1",
        "kairos.request_id": request_id,
        "kairos.retries": 0,
        "kairos.upstream": backend.pool_name,
        "kairos.backend": backend.name,
    }
    assert exported.resource["service.name"] == "kairos"
    assert exported.resource["telemetry.sdk.name"] == "opentelemetry"
    assert exported.scope == "kairos_otel"


async def test_client_traceparent_makes_the_span_its_child(
    kairos_gateway, echo_backend, receiver: OtlpReceiver, otel_gateway_config, http
) -> None:
    config = otel_gateway_config(
        echo_backend.url,
        receiver.url + "/",
        service_name="edge",
        resource_attributes={"deployment.environment.name": "test", "kairos.shard": 3},
    )
    gw = await kairos_gateway(config, [kairos_otel])
    headers = {
        "traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01",
        "tracestate": "vendor=abc,other=x",
    }
    async with http.post(gw.url + "/orders", headers=headers, data=b"{}") as response:
        assert response.status == 200
    upstream = echo_backend.records[-1].headers
    trace_id, span_id, flags = parse_traceparent(upstream["traceparent"])
    assert (trace_id, flags) == (CLIENT_TRACE, "01")
    assert span_id != CLIENT_SPAN
    assert upstream["tracestate"] == "vendor=abc,other=x"
    (exported,) = await receiver.wait_for(1)
    assert (exported.trace_id, exported.span_id) == (CLIENT_TRACE, span_id)
    assert exported.parent_span_id == CLIENT_SPAN
    assert exported.span.trace_state == "vendor=abc,other=x"
    assert exported.span.flags & SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK
    assert exported.span.name == "POST api"
    assert exported.resource["service.name"] == "edge"
    assert exported.resource["deployment.environment.name"] == "test"
    assert exported.resource["kairos.shard"] == 3


async def test_server_errors_set_error_status(
    kairos_gateway, echo_backend, receiver: OtlpReceiver, otel_gateway_config, http
) -> None:
    gw = await kairos_gateway(otel_gateway_config(echo_backend.url, receiver.url), [kairos_otel])
    for status in (503, 404):
        async with http.get(gw.url + "/x", headers={"X-Echo-Status": str(status)}) as response:
            assert response.status == status
    failed, missing = await receiver.wait_for(2)
    assert failed.attributes["http.response.status_code"] == 503
    assert failed.attributes["error.type"] == "503"
    assert failed.span.status.code == Status.STATUS_CODE_ERROR
    assert missing.attributes["http.response.status_code"] == 404
    assert "error.type" not in missing.attributes
    assert missing.span.status.code == Status.STATUS_CODE_UNSET


async def test_gateway_generated_errors_and_unusual_methods(
    kairos_gateway, receiver: OtlpReceiver, otel_gateway_config, http
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    gw = await kairos_gateway(otel_gateway_config(dead, receiver.url), [kairos_otel])
    async with http.request("PURGE", gw.url + "/x") as response:
        assert response.status == 502
    (exported,) = await receiver.wait_for(1)
    assert exported.span.name == "HTTP api"
    assert exported.attributes["http.request.method"] == "_OTHER"
    assert exported.attributes["http.request.method_original"] == "PURGE"
    assert exported.attributes["error.type"] == "502"
    assert exported.span.status.code == Status.STATUS_CODE_ERROR


async def test_consumer_is_recorded(
    kairos_gateway, echo_backend, receiver: OtlpReceiver, otel_gateway_config, header_auth, http
) -> None:
    config = otel_gateway_config(echo_backend.url, receiver.url)
    config["routes"][0]["plugins"] = [{"name": "test-user"}]
    gw = await kairos_gateway(config, [kairos_otel, header_auth])
    async with http.get(gw.url + "/me", headers={"X-Test-User": "alice"}) as response:
        assert response.status == 200
    async with http.get(gw.url + "/me") as response:
        assert response.status == 401
    spans = await receiver.wait_for(2)
    by_status = {s.attributes["http.response.status_code"]: s for s in spans}
    assert by_status[200].attributes["kairos.consumer"] == "alice"
    assert "kairos.consumer" not in by_status[401].attributes
    assert "kairos.upstream" not in by_status[401].attributes  # refused before the proxy


async def test_upstream_span_is_the_parent_of_the_upstream(
    kairos_gateway, echo_backend, receiver: OtlpReceiver, otel_gateway_config, http
) -> None:
    config = otel_gateway_config(echo_backend.url, receiver.url, upstream_span=True)
    gw = await kairos_gateway(config, [kairos_otel])
    headers = {"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"}
    async with http.get(gw.url + "/a/b?x=1", headers=headers) as response:
        assert response.status == 200
    _, upstream_parent, flags = parse_traceparent(echo_backend.records[-1].headers["traceparent"])
    assert flags == "01"
    spans = await receiver.wait_for(2)
    kinds = {s.span.kind: s for s in spans}
    server, client = kinds[Span.SPAN_KIND_SERVER], kinds[Span.SPAN_KIND_CLIENT]
    assert server.trace_id == client.trace_id == CLIENT_TRACE
    assert server.parent_span_id == CLIENT_SPAN
    assert client.parent_span_id == server.span_id
    assert client.span_id == upstream_parent
    backend = next(iter(gw.gateway.runtime.pools.values())).backends[0]
    assert client.span.name == "GET"
    assert client.attributes["url.full"] == f"{backend.url}/a/b"
    assert client.attributes["server.port"] == echo_backend.port
    assert client.attributes["http.response.status_code"] == 200
    assert server.span.start_time_unix_nano <= client.span.start_time_unix_nano
    assert client.span.end_time_unix_nano <= server.span.end_time_unix_nano


async def test_route_entries_share_one_exporter_and_can_differ(
    kairos_gateway, echo_backend, receiver: OtlpReceiver, otel_gateway_config, http
) -> None:
    base = otel_gateway_config(echo_backend.url, receiver.url)
    otel = base["plugins"][0]
    quiet = {"name": "otel", "config": {**otel["config"], "sample_ratio": 0.0}}
    config = {
        "routes": [
            {"name": "loud", "prefix": "/loud", "upstream": base["routes"][0]["upstream"]},
            {
                "name": "quiet",
                "prefix": "/quiet",
                "upstream": base["routes"][0]["upstream"],
                "plugins": [quiet],
            },
        ],
        "plugins": [otel],
    }
    gw = await kairos_gateway(config, [kairos_otel])
    pipelines = gw.gateway.runtime.services.shared["otel"]
    assert len(pipelines) == 1
    for path in ("/quiet", "/loud", "/quiet"):
        async with http.get(gw.url + path) as response:
            assert response.status == 200
    (exported,) = await receiver.wait_for(1)
    assert exported.attributes["http.route"] == "loud"


class FailingStage:
    """Registers `explode`: a transformer that raises inside the chain."""

    @hookimpl
    def register_transformers(self, register: Callable[[StagePlugin[Any]], None]) -> None:
        """Register `explode`."""

        def build(config: NoConfig, context: BuildContext) -> Middleware:
            async def explode(ctx: RequestContext, call_next: Handler) -> Response:
                raise RuntimeError("boom")

            return explode

        register(StagePlugin(name="explode", build=build))


async def test_a_stage_that_raises_is_an_error_span(
    kairos_gateway, echo_backend, receiver: OtlpReceiver, otel_gateway_config, http
) -> None:
    config = otel_gateway_config(echo_backend.url, receiver.url)
    config["routes"][0]["plugins"] = [{"name": "explode"}]
    gw = await kairos_gateway(config, [kairos_otel, FailingStage()])
    async with http.get(gw.url + "/x") as response:
        assert response.status == 500
    (exported,) = await receiver.wait_for(1)
    assert exported.attributes["error.type"] == "RuntimeError"
    assert exported.attributes["http.response.status_code"] == 500
    assert exported.span.status.code == Status.STATUS_CODE_ERROR
