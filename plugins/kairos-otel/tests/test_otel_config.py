"""Configuration: a real YAML file with `${VAR}` secrets, workers, gRPC, and clear errors."""

from __future__ import annotations

import asyncio
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import kairos_otel
import pytest
from kairos_otel.config import OtelConfig
from kairos_otel.exporters import traces_url
from kairos_otel.testing import OtlpReceiver, parse_traceparent
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from kairos_core.testing import GatewayProcess, running_gateway

CONFIG = """
admin: {host: 127.0.0.1, port: 0}
routes:
  - name: api
    prefix: /
    upstream: {backends: [{url: "%s"}]}
plugins:
  - name: otel
    config:
      endpoint: "%s"
      compression: gzip
      headers:
        Authorization: "Bearer ${KAIROS_TEST_OTEL_TOKEN}"
      service_name: edge-gateway
      resource_attributes: {deployment.environment.name: staging}
      schedule_delay: 30
"""
TOKEN = "otel-secret-token-value-42"


async def test_yaml_file_with_env_secret_and_two_workers(
    tmp_path: Path, echo_backend, receiver: OtlpReceiver, http
) -> None:
    path = tmp_path / "kairos.yaml"
    path.write_text(CONFIG % (echo_backend.url, receiver.url))
    gateway = GatewayProcess(
        ["-c", str(path), "--host", "127.0.0.1", "--port", "0", "--workers", "2"],
        env={"KAIROS_TEST_OTEL_TOKEN": TOKEN},
    )
    await gateway.start()
    try:
        for _ in range(6):
            async with http.get(gateway.url + "/w") as response:
                assert response.status == 200
        assert gateway.admin_url is not None
        async with http.get(gateway.admin_url + "/config") as response:
            shown = await response.text()
        assert response.status == 200
        assert TOKEN not in shown
        assert "otel" in shown
    finally:
        assert await gateway.stop() == 0  # SIGTERM: every worker flushes its queue
    sent = {parse_traceparent(r.headers["traceparent"])[0] for r in echo_backend.records}
    assert {s.trace_id for s in receiver.spans} == sent
    assert {h["Authorization"] for h in receiver.headers} == {f"Bearer {TOKEN}"}
    assert {h.get("Content-Encoding") for h in receiver.headers} == {"gzip"}
    instances = {s.resource["service.instance.id"] for s in receiver.spans}
    assert {i.rsplit("-", 1)[1] for i in instances} <= {"0", "1"}  # "<gateway id>-<worker>"
    assert len({i.rsplit("-", 1)[0] for i in instances}) == 1
    assert {s.resource["service.name"] for s in receiver.spans} == {"edge-gateway"}
    assert {s.resource["deployment.environment.name"] for s in receiver.spans} == {"staging"}


class GrpcCollector(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
    """An OTLP/gRPC trace service that hands what it gets to an OtlpReceiver on the loop."""

    def __init__(self, receiver: OtlpReceiver, loop: asyncio.AbstractEventLoop) -> None:
        self.receiver = receiver
        self.loop = loop

    def Export(self, request: ExportTraceServiceRequest, context: Any) -> Any:
        """Record one export."""
        metadata = {key: value for key, value in context.invocation_metadata()}
        self.loop.call_soon_threadsafe(self.receiver.add, request, metadata)
        return ExportTraceServiceResponse()


async def test_grpc_export(echo_backend, otel_gateway_config, http) -> None:
    receiver = OtlpReceiver()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(
        GrpcCollector(receiver, asyncio.get_running_loop()), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        config = otel_gateway_config(
            echo_backend.url,
            f"http://127.0.0.1:{port}",
            protocol="grpc",
            headers={"X-Collector-Key": "k1"},
        )
        async with running_gateway(config, [kairos_otel]) as gw:
            async with http.get(gw.url + "/g") as response:
                assert response.status == 200
            (exported,) = await receiver.wait_for(1)
    finally:
        server.stop(None)
    trace_id, span_id, _ = parse_traceparent(echo_backend.records[-1].headers["traceparent"])
    assert (exported.trace_id, exported.span_id) == (trace_id, span_id)
    assert receiver.headers[0]["x-collector-key"] == "k1"


@pytest.mark.parametrize(
    ("settings", "where", "message"),
    [
        ({"sample_ratio": 1.5}, "sample_ratio", "less than or equal to 1"),
        ({"endpoint": "collector:4318"}, "endpoint", "expected an http:// or https:// URL"),
        ({"protocol": "thrift"}, "protocol", "'http/protobuf' or 'grpc'"),
        ({"headers": {"Bad Header": "x"}}, "headers", "invalid header name"),
        ({"max_queue_size": 10, "max_export_batch_size": 20}, "", "must not exceed"),
        ({"schedule_delay": 0}, "schedule_delay", "greater than 0"),
        ({"sampling": 0.5}, "sampling", "unknown field"),
    ],
)
async def test_bad_settings_name_the_field(
    kairos_gateway,
    echo_backend,
    otel_gateway_config,
    settings: dict[str, Any],
    where: str,
    message: str,
) -> None:
    config = otel_gateway_config(echo_backend.url, "http://127.0.0.1:4318")
    config["plugins"][0]["config"].update(settings)
    with pytest.raises(Exception, match=rf"plugins\[0\]\.config\.?{where}") as caught:
        await kairos_gateway(config, [kairos_otel])
    assert caught.match(message)


def test_traces_url() -> None:
    assert traces_url("http://c:4318") == "http://c:4318/v1/traces"
    assert traces_url("https://c:4318/") == "https://c:4318/v1/traces"
    assert traces_url("https://c/otlp/v1/traces") == "https://c/otlp/v1/traces"
    assert traces_url(None) is None


def test_secret_headers_are_hidden() -> None:
    config = OtelConfig(headers={"Authorization": "Bearer abc"})
    assert "abc" not in repr(config)
    assert "abc" not in config.model_dump_json()


async def test_grpc_without_its_exporter_is_a_clear_error(
    kairos_gateway, echo_backend, otel_gateway_config, monkeypatch
) -> None:
    import importlib.util

    from kairos_otel import exporters

    real = importlib.util.find_spec
    monkeypatch.setattr(
        exporters.importlib.util,
        "find_spec",
        lambda name, *a: None if name == exporters.GRPC_MODULE else real(name, *a),
    )
    config = otel_gateway_config(echo_backend.url, "http://127.0.0.1:4317", protocol="grpc")
    with pytest.raises(Exception, match=r"pip install 'kairos-otel\[grpc\]'"):
        await kairos_gateway(config, [kairos_otel])
