"""Access log lines (JSON and text), trace context propagation, and a full disk for logs."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

from kairos_core.config.observability import AccessLogConfig
from kairos_core.telemetry.access_log import AccessLog
from kairos_core.telemetry.tracing import next_traceparent


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


async def test_json_access_log_fields(kairos_gateway, echo_backend, http, tmp_path) -> None:
    log_path = tmp_path / "access.log"
    gw = await kairos_gateway(
        {
            "observability": {"access_log": {"destination": str(log_path), "flush_interval": 0.05}},
            "routes": [
                {
                    "name": "r",
                    "path": "/r/{x}",
                    "upstream": {"backends": [{"url": echo_backend.url, "name": "b1"}]},
                }
            ],
        }
    )
    async with http.post(gw.url + "/r/1?token=should-not-be-logged", data=b"hello") as response:
        rid = response.headers["X-Request-ID"]
    async with http.get(gw.url + "/nowhere") as response:
        assert response.status == 404
    await asyncio.sleep(0.2)
    first, second = lines(log_path)[-2:]
    assert first["request_id"] == rid
    assert first["route"] == "r"
    assert first["method"] == "POST"
    assert first["path"] == "/r/1"
    assert first["status"] == 200
    assert first["bytes_in"] == 5
    assert first["upstream"] == "route:r/b1"
    assert first["client"] == "127.0.0.1"
    assert re.match(r"^[0-9a-f]{32}$", str(first["trace_id"]))
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", str(first["time"]))
    assert "should-not-be-logged" not in log_path.read_text()
    assert second["status"] == 404
    assert second["route"] is None


async def test_text_access_log(kairos_gateway, echo_backend, http, tmp_path) -> None:
    log_path = tmp_path / "access.txt"
    gw = await kairos_gateway(
        {
            "observability": {
                "access_log": {
                    "destination": str(log_path),
                    "format": "text",
                    "flush_interval": 0.05,
                }
            },
            "routes": [{"prefix": "/", "upstream": {"backends": [{"url": echo_backend.url}]}}],
        }
    )
    async with http.get(gw.url + "/t") as response:
        assert response.status == 200
    await asyncio.sleep(0.2)
    text = log_path.read_text()
    assert '"GET /t" 200' in text
    assert "route=root" in text


async def test_full_disk_drops_log_lines_not_requests(kairos_gateway, echo_backend, http) -> None:
    gw = await kairos_gateway(
        {
            "observability": {
                "access_log": {"destination": "/dev/full", "buffer_size": 1, "flush_interval": 0.05}
            },
            "routes": [{"prefix": "/", "upstream": {"backends": [{"url": echo_backend.url}]}}],
        }
    )
    for _ in range(5):
        async with http.get(gw.url + "/") as response:
            assert response.status == 200
    assert gw.gateway.access_log is not None
    assert gw.gateway.access_log.dropped >= 5


def test_access_log_buffers_until_size_or_flush(tmp_path) -> None:
    path = tmp_path / "a.log"
    log = AccessLog(AccessLogConfig(destination=str(path), buffer_size=1000))
    log.write({"request_id": "x"})
    assert path.read_bytes() == b""
    log.flush()
    assert b'"request_id":"x"' in path.read_bytes()
    log.close()


async def test_traceparent_is_continued_or_started(kairos_gateway, echo_backend, http) -> None:
    gw = await kairos_gateway(
        {"routes": [{"prefix": "/", "upstream": {"backends": [{"url": echo_backend.url}]}}]}
    )
    incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    async with http.get(
        gw.url + "/", headers={"traceparent": incoming, "tracestate": "vendor=1"}
    ) as response:
        assert response.status == 200
    sent = echo_backend.records[-1].headers
    version, trace, span, flags = sent["traceparent"].split("-")
    assert (version, trace, flags) == ("00", "4bf92f3577b34da6a3ce929d0e0e4736", "01")
    assert span != "00f067aa0ba902b7"  # the gateway's own hop
    assert sent["tracestate"] == "vendor=1"
    async with http.get(gw.url + "/", headers={"traceparent": "garbage"}) as response:
        assert response.status == 200
    assert re.match(
        r"^00-[0-9a-f]{32}-[0-9a-f]{16}-01$", echo_backend.records[-1].headers["traceparent"]
    )


def test_traceparent_rules() -> None:
    trace, span, header, parent = next_traceparent(None)
    assert len(trace) == 32
    assert parent is None
    assert header == f"00-{trace}-{span}-01"
    for bad in (
        "00-" + "0" * 32 + "-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-" + "0" * 16 + "-01",
        "ff-x",
    ):
        assert next_traceparent(bad)[3] is None
