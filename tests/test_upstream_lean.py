"""The lean upstream client against raw-socket backends that write exact bytes."""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trustme
import uvloop
from core_dns_server import start_dns
from core_raw_http import RawServer, backend_for, serve_each
from multidict import CIMultiDict

from kairos_core.config.models import ResolverConfig, Timeouts, UpstreamConfig, UpstreamTLS
from kairos_core.tls import upstream_context
from kairos_core.upstream.client import UpstreamError, UpstreamResponse
from kairos_core.upstream.lean import LeanUpstreamClient
from kairos_core.upstream.lean.connection import READ_PAUSE_AT
from kairos_core.upstream.pool import Backend

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class Lean:
    """Builds clients for a test and closes them afterwards."""

    def __init__(self) -> None:
        self.clients: list[LeanUpstreamClient] = []

    def __call__(
        self,
        url: str,
        resolver: ResolverConfig | None = None,
        ssl_context: ssl.SSLContext | None = None,
        server_name: str | None = None,
        **upstream: Any,
    ) -> tuple[LeanUpstreamClient, Backend]:
        config = UpstreamConfig.model_validate({"backends": [{"url": url}], **upstream})
        client = LeanUpstreamClient(config, resolver or ResolverConfig(), ssl_context, server_name)
        self.clients.append(client)
        return client, backend_for(url, **upstream)


@pytest.fixture
async def lean() -> AsyncIterator[Lean]:
    factory = Lean()
    yield factory
    for client in factory.clients:
        await client.close()


async def send(
    client: LeanUpstreamClient,
    backend: Backend,
    method: str = "GET",
    target: str = "/",
    headers: dict[str, str] | None = None,
    body: bytes | AsyncIterator[bytes] | None = None,
    timeouts: Timeouts | None = None,
) -> UpstreamResponse:
    out: CIMultiDict[str] = CIMultiDict({"Host": backend.host_header, **(headers or {})})
    return await client.send(backend, method, target, out, body, timeouts or Timeouts())


async def fetch(client: LeanUpstreamClient, backend: Backend, **kwargs: Any) -> tuple[int, bytes]:
    response = await send(client, backend, **kwargs)
    return response.status, b"".join([chunk async for chunk in response.body])


async def eventually(check: Callable[[], bool], within: float = 3.0) -> None:
    """Wait until `check()` holds (loaded machines are slow), failing after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def collect(body: AsyncIterator[bytes], into: list[bytes]) -> None:
    async for chunk in body:
        into.append(chunk)


async def test_chunked_response_with_extensions_and_trailers(lean: Lean) -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n"
        b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n"
        b'5;ext=1\r\nhello\r\n6;name="v"\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n'
    )
    async with RawServer(serve_each(chunked, OK)) as server:
        client, backend = lean(server.url)
        response = await send(client, backend)
        assert response.status == 200 and response.reason == "OK"
        assert response.headers.getall("Set-Cookie") == ["a=1", "b=2"]
        assert b"".join([c async for c in response.body]) == b"hello world"
        assert "X-Sum" not in response.headers  # trailers are dropped
        assert await fetch(client, backend) == (200, b"ok")
        assert server.connections == 1


async def test_a_body_that_came_with_its_head_is_given_whole(lean: Lean) -> None:
    async def script(reader: Any, writer: asyncio.StreamWriter, server: RawServer) -> None:
        await server.next_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nwhol")
        await server.next_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nhalf")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b" two")
        await server.next_request(reader)

    async with RawServer(script) as server:
        client, backend = lean(server.url)
        whole = await send(client, backend)
        assert whole.whole == b"whol"
        assert b"".join([c async for c in whole.body]) == b"whol"
        later = await send(client, backend)
        assert later.whole is None  # still streaming: the proxy passes the iterator on
        assert b"".join([c async for c in later.body]) == b"half two"


async def test_close_delimited_bodies(lean: Lean) -> None:
    async def script(reader: Any, writer: asyncio.StreamWriter, server: RawServer) -> None:
        await server.next_request(reader)
        version = b"1.0" if server.connections == 1 else b"1.1"
        writer.write(b"HTTP/" + version + b" 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil ")
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(b"the end")
        writer.close()

    async with RawServer(script) as server:
        client, backend = lean(server.url)
        assert await fetch(client, backend) == (200, b"until the end")
        assert await fetch(client, backend) == (200, b"until the end")
        assert server.connections == 2
        assert client.idle_connections() == 0


async def test_head_204_and_304_have_no_body_and_keep_the_connection(lean: Lean) -> None:
    responses = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 50\r\n\r\n',
        OK,
    )
    async with RawServer(serve_each(*responses)) as server:
        client, backend = lean(server.url)
        head = await send(client, backend, method="HEAD")
        assert head.headers["Content-Length"] == "50"
        assert [c async for c in head.body] == []
        assert await fetch(client, backend) == (204, b"")
        assert await fetch(client, backend, headers={"If-None-Match": '"v1"'}) == (304, b"")
        assert await fetch(client, backend) == (200, b"ok")
        assert server.connections == 1


async def test_interim_responses_are_skipped(lean: Lean) -> None:
    interim = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 102 Processing\r\nX-Interim: yes\r\n\r\n"
        b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndone"
    )
    async with RawServer(serve_each(interim, OK)) as server:
        client, backend = lean(server.url)
        response = await send(client, backend, method="POST", body=b"data")
        assert response.status == 201 and "X-Interim" not in response.headers
        assert b"".join([c async for c in response.body]) == b"done"
        assert await fetch(client, backend) == (200, b"ok")
        assert server.connections == 1


async def test_keepalive_reuses_one_connection_and_sends_clean_heads(lean: Lean) -> None:
    async with RawServer(serve_each(*[OK] * 20)) as server:
        client, backend = lean(server.url)
        hop_by_hop = {
            "Connection": "X-Private",
            "X-Private": "1",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Upgrade": "websocket",
            "Expect": "100-continue",
            "Transfer-Encoding": "chunked",
            "Proxy-Authorization": "secret",
            "X-Kept": "yes",
        }
        for _ in range(20):
            assert await fetch(client, backend, headers=hop_by_hop) == (200, b"ok")
        assert server.connections == 1
        sent = [line.split(b":")[0] for line in server.requests[0].head.lower().split(b"\r\n")]
        assert sent == [b"get / http/1.1", b"host", b"x-kept", b"", b""]
        with pytest.raises(ValueError):
            await send(client, backend, headers={"X-Evil": "a\r\nX-Injected: 1"})


async def test_max_connections_queue_in_order(lean: Lean) -> None:
    gate = asyncio.Event()  # the backend answers only while it is set
    gate.set()

    async def slow(reader: Any, writer: asyncio.StreamWriter, server: RawServer) -> None:
        while (request := await server.next_request(reader)) is not None:
            await gate.wait()
            await asyncio.sleep(0.05)
            number = request.line.split(b" ")[1][1:]
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(number), number))

    async with RawServer(slow) as server:
        client, backend = lean(server.url, max_connections=2)
        finished: list[bytes] = []

        async def one(number: int) -> None:
            status, body = await fetch(client, backend, target=f"/{number}")
            assert status == 200
            finished.append(body)

        await asyncio.gather(*(one(n) for n in range(8)))
        assert sorted(finished) == [b"%d" % n for n in range(8)]
        assert server.most_open == 2 and server.connections == 2

        client, backend = lean(server.url, max_connections=1)
        finished.clear()
        await asyncio.gather(*(one(n) for n in range(5)))
        assert finished == [b"%d" % n for n in range(5)]  # served in FIFO order

        client, backend = lean(server.url, max_connections=2)
        gate.clear()  # /a and /b hold both slots until the gate opens
        asked, opened = len(server.requests), server.connections
        blocker = asyncio.ensure_future(fetch(client, backend, target="/a"))
        second = asyncio.ensure_future(fetch(client, backend, target="/b"))
        try:
            await eventually(lambda: len(server.requests) == asked + 2)
            with pytest.raises(UpstreamError) as waited:
                await fetch(client, backend, timeouts=Timeouts(connect=0.01))
            assert waited.value.kind == "connect_timeout" and not waited.value.sent
        finally:
            gate.set()
        assert await asyncio.gather(blocker, second) == [(200, b"a"), (200, b"b")]
        # The third timed out in the queue: it neither connected nor sent anything.
        assert (len(server.requests), server.connections) == (asked + 2, opened + 2)


async def test_idle_connections_expire(lean: Lean) -> None:
    async with RawServer(serve_each(OK, OK)) as server:
        client, backend = lean(server.url, keepalive_timeout=0.1)
        assert await fetch(client, backend) == (200, b"ok")
        assert client.idle_connections() == 1
        await eventually(lambda: client.idle_connections() == 0 and server.closed_by_peer == 1)
        assert await fetch(client, backend) == (200, b"ok")
        assert server.connections == 2


async def test_bytes_on_an_idle_connection_close_it_and_free_its_slot(lean: Lean) -> None:
    async def chatty(reader: Any, writer: asyncio.StreamWriter, server: RawServer) -> None:
        await server.next_request(reader)
        writer.write(OK)
        await asyncio.sleep(0.05)
        writer.write(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")
        await server.next_request(reader)

    async with RawServer(chatty) as server:
        client, backend = lean(server.url, max_connections=1)
        assert await fetch(client, backend) == (200, b"ok")
        await eventually(lambda: client.idle_connections() == 0 and server.closed_by_peer == 1)
        assert await fetch(client, backend, timeouts=Timeouts(connect=0.5)) == (200, b"ok")
        assert server.connections == 2


async def stale_after_first(reader: Any, writer: asyncio.StreamWriter, server: RawServer) -> None:
    """Answer the first request of the first connection, then drop the second unanswered."""
    await server.next_request(reader)
    writer.write(OK)
    if server.connections == 1:
        await server.next_request(reader)
        writer.transport.abort()
        return
    await server.next_request(reader)


async def test_stale_keepalive_connection_is_retried_once_for_get_only(lean: Lean) -> None:
    async with RawServer(stale_after_first) as server:
        client, backend = lean(server.url)
        assert await fetch(client, backend) == (200, b"ok")
        assert await fetch(client, backend) == (200, b"ok")
        assert server.connections == 2 and len(server.requests) == 3
    async with RawServer(stale_after_first) as server:
        client, backend = lean(server.url)
        assert await fetch(client, backend, method="POST", body=b"x") == (200, b"ok")
        with pytest.raises(UpstreamError) as failed:
            await fetch(client, backend, method="POST", body=b"x")
        assert failed.value.kind == "reset" and failed.value.sent
        assert server.connections == 1 and len(server.requests) == 2


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnot hex\r\n0\r\n\r\n",
    ],
    ids=["status-line", "chunk-size"],
)
async def test_malformed_responses_are_502_protocol(kairos_gateway, http, answer: bytes) -> None:
    async with RawServer(serve_each(answer)) as server:
        gw = await kairos_gateway(
            {"routes": [{"prefix": "/", "upstream": {"backends": [{"url": server.url}]}}]}
        )
        async with http.get(gw.url + "/") as response:
            assert response.status == 502
            assert (await response.json())["type"] == "upstream_protocol"


@pytest.mark.parametrize(
    "head",
    [b"Content-Length: 100\r\n\r\n", b"Transfer-Encoding: chunked\r\n\r\n40\r\n"],
    ids=["content-length", "chunked"],
)
async def test_backend_closing_mid_body_is_never_a_complete_body(lean: Lean, head: bytes) -> None:
    async def script(reader: Any, writer: asyncio.StreamWriter, server: RawServer) -> None:
        await server.next_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n" + head)
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(b"a" * 20)
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.close()

    async with RawServer(script) as server:
        client, backend = lean(server.url)
        response = await send(client, backend)
        received: list[bytes] = []
        with pytest.raises(UpstreamError) as cut:
            await collect(response.body, received)
        assert b"".join(received) == b"a" * 20 and cut.value.kind == "reset"
        assert client.idle_connections() == 0


async def test_request_bodies_are_streamed_chunked_or_raw(lean: Lean) -> None:
    async def parts() -> AsyncIterator[bytes]:
        for part in (b"one ", b"", b"two ", b"three"):
            yield part

    async with RawServer(serve_each(OK, OK, OK)) as server:
        client, backend = lean(server.url)
        assert await fetch(client, backend, method="PUT", body=parts()) == (200, b"ok")
        streamed = server.requests[-1]
        assert streamed.chunked and streamed.body == b"one two three"
        assert streamed.header("Content-Length") is None
        length = {"Content-Length": "13"}
        assert await fetch(client, backend, method="PUT", body=parts(), headers=length) == (
            200,
            b"ok",
        )
        raw = server.requests[-1]
        assert not raw.chunked and raw.body == b"one two three"
        assert raw.header("Transfer-Encoding") is None
        assert await fetch(client, backend, method="POST") == (200, b"ok")
        assert server.requests[-1].header("Content-Length") == "0"
        assert server.connections == 1


async def test_early_answer_stops_the_upload_and_retires_the_connection(lean: Lean) -> None:
    pulled = 0

    async def slow_upload() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(20):
            pulled += 1
            yield b"x" * 1000
            await asyncio.sleep(0.01)

    async def refuse(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Any
    ) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\n\r\nbig!")
        while await reader.read(65536):
            pass

    async with RawServer(refuse) as server:
        client, backend = lean(server.url)
        status, body = await fetch(client, backend, method="POST", body=slow_upload())
        assert (status, body) == (413, b"big!")
        assert pulled < 20
        assert client.idle_connections() == 0  # the request was cut short: never reused


async def test_large_bytes_body_in_two_writes(lean: Lean) -> None:
    async with RawServer(serve_each(OK)) as server:
        client, backend = lean(server.url)
        body = bytes(range(256)) * 400
        assert await fetch(client, backend, method="POST", body=body) == (200, b"ok")
        assert server.requests[0].body == body
        assert server.requests[0].header("Content-Length") == str(len(body))


async def test_flow_control_both_ways(lean: Lean) -> None:
    size = 32 << 20
    pulled = 0
    stalled_at = 0

    async def upload() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(size >> 20):
            pulled += 1
            yield b"u" * (1 << 20)

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: Any) -> None:
        nonlocal stalled_at
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(0.2)  # not reading: the sender must wait, not buffer
        stalled_at = pulled
        got = 0
        while got < size:
            got += len(await reader.read(1 << 20))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        for _ in range(size >> 20):
            writer.write(b"d" * (1 << 20))
            await writer.drain()

    async with RawServer(script) as server:
        client, backend = lean(server.url)
        headers = {"Content-Length": str(size)}
        response = await send(client, backend, method="POST", body=upload(), headers=headers)
        await asyncio.sleep(0.2)  # a slow client: the backend must be paused, not buffered
        conn = response.body._conn  # type: ignore[attr-defined]
        assert conn.buffered <= READ_PAUSE_AT + (1 << 20)
        total = 0
        async for chunk in response.body:
            total += len(chunk)
        assert total == size
    assert pulled == size >> 20
    assert stalled_at <= 16  # MiB pulled while the backend read nothing: socket buffers only


async def test_dns_change_drains_old_connections(lean: Lean) -> None:
    async with RawServer(serve_each(OK, OK), host="127.0.0.1") as first:
        async with RawServer(serve_each(OK), host="127.0.0.2", port=first.port) as second:
            dns = await start_dns({"backend.test.": "127.0.0.1"}, ttl=1)
            try:
                resolver = ResolverConfig(nameservers=[f"127.0.0.1:{dns.port}"], min_ttl=0)
                client, backend = lean(f"http://backend.test:{first.port}", resolver)
                assert await fetch(client, backend) == (200, b"ok")
                assert await fetch(client, backend) == (200, b"ok")
                assert first.connections == 1
                dns.records["backend.test."] = "127.0.0.2"
                await asyncio.sleep(1.1)
                assert await fetch(client, backend) == (200, b"ok")
                assert second.connections == 1
                await eventually(lambda: first.closed_by_peer == 1)  # closed, not kept
                assert client.idle_connections() == 1
            finally:
                assert dns.transport is not None
                dns.transport.close()


async def test_connect_errors_and_timeouts(lean: Lean) -> None:
    async def silent(reader: Any, writer: asyncio.StreamWriter, server: RawServer) -> None:
        await server.next_request(reader)
        await asyncio.sleep(5)

    async with RawServer(silent) as server:
        client, backend = lean(server.url)
        with pytest.raises(UpstreamError) as idle:
            await fetch(client, backend, timeouts=Timeouts(read=0.1))
        assert idle.value.kind == "timeout" and idle.value.sent
        with pytest.raises(UpstreamError) as late:
            await fetch(client, backend, timeouts=Timeouts(read=5, total=0.1))
        assert late.value.kind == "timeout" and late.value.sent
    client, backend = lean(server.url)
    with pytest.raises(UpstreamError) as refused:
        await fetch(client, backend)
    assert refused.value.kind == "connect" and not refused.value.sent
    await client.close()
    with pytest.raises(UpstreamError) as closed:
        await fetch(client, backend)
    assert closed.value.kind == "connect" and "closed" in str(closed.value)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


async def test_tls_upstream(lean: Lean, ca: trustme.CA, tmp_path: Path) -> None:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("backend.internal").configure_cert(server_context)
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    async with RawServer(serve_each(OK, OK), ssl_context=server_context) as server:
        tls = UpstreamTLS(ca_bundle=str(ca_path), server_name="backend.internal")
        client, backend = lean(server.url, None, upstream_context(tls), "backend.internal")
        assert await fetch(client, backend) == (200, b"ok")
        assert await fetch(client, backend) == (200, b"ok")
        assert server.connections == 1
        wrong_name = UpstreamTLS(ca_bundle=str(ca_path))
        client, backend = lean(server.url, None, upstream_context(wrong_name))
        with pytest.raises(UpstreamError) as refused:
            await fetch(client, backend)
        assert refused.value.kind == "connect" and not refused.value.sent
        assert "certificate" in str(refused.value)


def run_on_uvloop(case: Callable[[Lean], Awaitable[None]]) -> None:
    """Run a scenario on uvloop (which `kairos serve` uses), closing its clients after."""

    async def scenario() -> None:
        factory = Lean()
        try:
            await case(factory)
        finally:
            for client in factory.clients:
                await client.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(scenario())


UVLOOP_CASES: list[Callable[[Lean], Awaitable[None]]] = [
    test_chunked_response_with_extensions_and_trailers,
    test_close_delimited_bodies,
    test_head_204_and_304_have_no_body_and_keep_the_connection,
    test_interim_responses_are_skipped,
    test_keepalive_reuses_one_connection_and_sends_clean_heads,
    test_max_connections_queue_in_order,
    test_idle_connections_expire,
    test_bytes_on_an_idle_connection_close_it_and_free_its_slot,
    test_stale_keepalive_connection_is_retried_once_for_get_only,
    functools.partial(
        test_backend_closing_mid_body_is_never_a_complete_body,
        head=b"Transfer-Encoding: chunked\r\n\r\n40\r\n",
    ),
    test_request_bodies_are_streamed_chunked_or_raw,
    test_early_answer_stops_the_upload_and_retires_the_connection,
    test_flow_control_both_ways,
    test_connect_errors_and_timeouts,
]


@pytest.mark.parametrize(
    "case",
    UVLOOP_CASES,
    ids=lambda case: getattr(case, "__name__", "test_backend_closing_mid_body"),
)
def test_again_on_uvloop(case: Callable[[Lean], Awaitable[None]]) -> None:
    run_on_uvloop(case)


def test_tls_upstream_on_uvloop(ca: trustme.CA, tmp_path: Path) -> None:
    run_on_uvloop(functools.partial(test_tls_upstream, ca=ca, tmp_path=tmp_path))
