"""The lean server front: what it serves itself, what it hands to aiohttp, and keep-alive."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

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
from kairos_core.server.lean_protocol import LeanServer
from kairos_core.testing import running_gateway
from kairos_core.testing.backends import Backend, echo_app, start_backend


def route_to(url: str) -> dict[str, Any]:
    """One route under /api; /missing has none (a 404 the gateway answers itself); a request
    to /api/failing-cleanup registers a cleanup that raises, /api/split-header gets a response
    header whose value holds a CRLF, /api/close-callbacks plain and async close callbacks."""
    return {
        "routes": [
            {
                "prefix": "/api",
                "upstream": {"backends": [{"url": url}]},
                "plugins": [{"name": "probe-stage"}],
            }
        ]
    }


class ProbeStage:
    """A cleanup that raises (/api/failing-cleanup), a header that would split (/api/split-header)."""

    @hookimpl
    def register_transformers(self, register: Callable[[StagePlugin[Any]], None]) -> None:
        def build(config: NoConfig, context: BuildContext) -> Middleware:
            async def stage(ctx: RequestContext, call_next: Handler) -> Response:
                if ctx.path == "/api/failing-cleanup":
                    ctx.add_cleanup(self.fail)
                response = await call_next(ctx)
                if ctx.path == "/api/split-header":
                    response.headers["X-Split"] = "a\r\nSet-Cookie: stolen=1"
                    response.headers["X-Kept"] = "b"
                if ctx.path == "/api/close-callbacks":
                    response.on_close(lambda: self.closed.append("plain"))
                    response.on_close(self.close_later)
                    response.on_close(lambda: self.closed.append("after"))
                return response

            return stage

        register(StagePlugin(name="probe-stage", build=build))

    def __init__(self) -> None:
        self.closed: list[str] = []

    @staticmethod
    def fail() -> None:
        """The cleanup."""
        raise RuntimeError("cleanup failed")

    async def close_later(self) -> None:
        """An async close callback."""
        await asyncio.sleep(0)
        self.closed.append("async")


@dataclass
class Served:
    """A gateway on the lean front in front of an echo backend."""

    backend: Backend
    front: LeanServer
    probe: ProbeStage
    port: int
    runtime_in_flight: Callable[[], int]

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A raw client connection to the gateway."""
        return await asyncio.open_connection("127.0.0.1", self.port)


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    async with (
        start_backend(echo_app()) as backend,
        running_gateway(route_to(backend.url), [probe := ProbeStage()], admin=False) as gw,
    ):
        front = gw.gateway.listeners[0].http
        assert isinstance(front, LeanServer)
        port = int(gw.url.rsplit(":", 1)[1])
        yield Served(backend, front, probe, port, lambda: gw.gateway.current()[0].in_flight)


async def read_responses(reader: asyncio.StreamReader, count: int) -> list[tuple[bytes, bytes]]:
    """Read `count` Content-Length framed responses: (head, body) each."""
    out = []
    for _ in range(count):
        async with asyncio.timeout(5):
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            out.append((head, await reader.readexactly(length)))
    return out


async def get(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str
) -> tuple[bytes, bytes]:
    """Send `GET path` on the connection and read its response: (head, body)."""
    writer.write(b"GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % path.encode())
    [answer] = await read_responses(reader, 1)
    return answer


def path_of(body: bytes) -> str:
    """The path the echo backend saw."""
    return str(json.loads(body)["raw_path"])


async def test_pipelined_requests_on_the_lean_path_answer_in_order(served: Served) -> None:
    reader, writer = await served.connect()
    writer.write(b"".join(b"GET /api/%d HTTP/1.1\r\nHost: a\r\n\r\n" % i for i in range(5)))
    answers = await read_responses(reader, 5)
    assert [path_of(body) for _, body in answers] == [f"/api/{i}" for i in range(5)]
    assert all(head.startswith(b"HTTP/1.1 200 ") for head, _ in answers)
    assert len(served.front.connections) == 1 and served.front.fallback.open_connections() == 0
    writer.close()


async def test_a_chunked_upload_hands_the_connection_to_aiohttp_mid_stream(
    served: Served,
) -> None:
    reader, writer = await served.connect()
    writer.write(b"POST /api/lean HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
    [(head, body)] = await read_responses(reader, 1)
    assert head.startswith(b"HTTP/1.1 200 ") and json.loads(body)["body"] == "hello"
    assert len(served.front.connections) == 1
    writer.write(
        b"POST /api/chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        b"GET /api/after HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    answers = await read_responses(reader, 2)
    assert json.loads(answers[0][1])["body"] == "abcde"
    assert path_of(answers[1][1]) == "/api/after"
    assert len(served.front.connections) == 0 and served.front.fallback.open_connections() == 1
    writer.close()


async def test_an_unread_body_is_drained_and_the_connection_kept(served: Served) -> None:
    reader, writer = await served.connect()
    body = b"x" * 300_000  # more than one read: the 404 goes out before the body is in
    writer.write(b"POST /missing HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(body))
    [(head, _)] = await read_responses(reader, 1)
    assert head.startswith(b"HTTP/1.1 404 ")
    writer.write(body + b"GET /api/next HTTP/1.1\r\nHost: a\r\n\r\n")
    [(head, answer)] = await read_responses(reader, 1)
    assert head.startswith(b"HTTP/1.1 200 ") and path_of(answer) == "/api/next"
    assert len(served.backend.records) == 1  # the unread body never reached a backend
    writer.close()


async def test_http_1_0_and_a_missing_host_get_aiohttps_answers(served: Served) -> None:
    for raw, status in (
        (b"GET /api/old HTTP/1.0\r\nHost: a\r\n\r\n", b"200"),
        (b"GET /api/HTTP/1.1 HTTP/1.0\r\nHost: a\r\n\r\n", b"200"),  # the version ends the line
        (b"GET /api/nohost HTTP/1.1\r\n\r\n", b"400"),
        (b"GET /api/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", b"400"),
    ):
        reader, writer = await served.connect()
        writer.write(raw)
        async with asyncio.timeout(5):
            answer = await reader.read()
        assert answer.split(b" ", 2)[1] == status, answer[:200]
        writer.close()


async def test_an_unasked_for_expected_body_closes_the_connection(served: Served) -> None:
    reader, writer = await served.connect()
    writer.write(
        b"POST /missing HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n"
    )
    async with asyncio.timeout(5):
        answer = await reader.read()  # to EOF: the connection closes after the 404
    assert answer.startswith(b"HTTP/1.1 404 ")
    assert b"100 Continue" not in answer
    writer.close()
    reader, writer = await served.connect()
    writer.write(
        b"POST /api/up HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
    )
    async with asyncio.timeout(5):
        assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b"hello")
    [(head, body)] = await read_responses(reader, 1)
    assert head.startswith(b"HTTP/1.1 200 ") and json.loads(body)["body"] == "hello"
    writer.close()


async def test_a_failing_cleanup_is_logged_and_the_connection_goes_on(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    reader, writer = await served.connect()
    head, body = await get(reader, writer, "/api/failing-cleanup")
    assert head.startswith(b"HTTP/1.1 200 ") and path_of(body) == "/api/failing-cleanup"
    head, body = await get(reader, writer, "/api/fine")
    assert head.startswith(b"HTTP/1.1 200 ") and path_of(body) == "/api/fine"
    assert "a cleanup failed" in caplog.text
    assert served.runtime_in_flight() == 0  # the failed cleanup skipped no bookkeeping
    writer.close()


async def test_a_header_value_with_a_line_break_is_dropped_not_sent(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    reader, writer = await served.connect()
    head, body = await get(reader, writer, "/api/split-header")
    assert head.startswith(b"HTTP/1.1 200 ") and path_of(body) == "/api/split-header"
    assert b"Set-Cookie" not in head and b"X-Split" not in head
    assert b"\r\nX-Kept: b\r\n" in head and head.endswith(b"\r\n\r\n")
    assert head.count(b"\r\n") == head.count(b"\n")  # every line break is a field separator
    assert "dropping response header 'X-Split'" in caplog.text
    writer.close()


async def test_close_callbacks_plain_and_async_all_run_in_order(served: Served) -> None:
    reader, writer = await served.connect()
    for _ in range(2):
        head, _ = await get(reader, writer, "/api/close-callbacks")
        assert head.startswith(b"HTTP/1.1 200 ")
    async with asyncio.timeout(5):
        while len(served.probe.closed) < 6:
            await asyncio.sleep(0.01)
    assert served.probe.closed == ["plain", "async", "after"] * 2
    assert served.runtime_in_flight() == 0
    writer.close()


async def test_the_aiohttp_engine_serves_everything_itself() -> None:
    config = {
        "routes": [{"prefix": "/", "upstream": {"backends": [{"url": "http://127.0.0.1:1"}]}}]
    }
    async with running_gateway(config | {"server": {"engine": "aiohttp"}}, admin=False) as gw:
        assert not isinstance(gw.gateway.listeners[0].http, LeanServer)


async def test_a_request_line_without_a_version_is_not_served_as_http_1_1(served: Served) -> None:
    """llhttp reads `GET /api/HTTP/1.1` as HTTP/0.9 with that path (found in review): it goes to
    aiohttp, which refuses it, and nothing behind it on the connection reaches a backend."""
    reader, writer = await served.connect()
    writer.write(b"GET /api/HTTP/1.1\r\nHost: a\r\n\r\nGET /api/second HTTP/1.1\r\nHost: a\r\n\r\n")
    async with asyncio.timeout(5):
        answer = await reader.read()
    assert answer.split(b" ", 2)[1] == b"400", answer[:200]
    assert served.backend.records == []
    writer.close()
