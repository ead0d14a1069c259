"""Slow and greedy clients: head timeout (slowloris), body timeout, idle keep-alive, max connections."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
from core_raw_http import RecordingBackend

from kairos_core.testing import running_gateway

HEAD = b"GET /slow HTTP/1.1\r\nHost: a\r\n"


def config(backend_url: str, **server: Any) -> dict[str, Any]:
    """One route to `backend_url` with `server` settings."""
    return {
        "server": server,
        "routes": [
            {
                "prefix": "/",
                "upstream": {"backends": [{"url": backend_url}]},
                "timeouts": {"read": 0.5},
            }
        ],
    }


def address(url: str) -> tuple[str, int]:
    """Host and port of a gateway URL."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes | None:
    """Everything read until EOF, or None when the connection is still open after `seconds`."""
    data = b""
    try:
        async with asyncio.timeout(seconds):
            while chunk := await reader.read(65536):
                data += chunk
    except TimeoutError:
        return None
    except ConnectionError:
        pass
    return data


async def test_slowloris_is_cut_after_the_head_timeout_while_others_are_served() -> None:
    async with (
        RecordingBackend() as backend,
        running_gateway(config(backend.url, header_timeout=1.0), admin=False) as gw,
        aiohttp.ClientSession() as http,
    ):
        host, port = address(gw.url)
        opened = time.monotonic()
        slow = [await asyncio.open_connection(host, port) for _ in range(300)]
        for _, writer in slow:
            writer.write(HEAD)

        async def trickle() -> None:
            for i in range(100):
                await asyncio.sleep(0.1)
                for _, writer in slow:
                    if not writer.is_closing():
                        writer.write(b"X-Slow-%d: v\r\n" % i)

        trickling = asyncio.create_task(trickle())
        latencies = []
        for _ in range(10):
            started = time.monotonic()
            async with http.get(gw.url + "/fast") as response:
                assert response.status == 200
            latencies.append(time.monotonic() - started)
            await asyncio.sleep(0.05)
        assert max(latencies) < 0.5, latencies
        ends = await asyncio.gather(*(closed_within(reader, 3.0) for reader, _ in slow))
        cut_after = time.monotonic() - opened
        trickling.cancel()
        for _, writer in slow:
            writer.close()
        assert all(end == b"" for end in ends), "a slow client was answered or left open"
        assert 1.0 <= cut_after < 2.5
        assert all(body == b"" for body in backend.bodies)
        assert len(backend.bodies) == 10  # only the fast requests reached the backend


async def test_head_timeout_applies_to_later_requests_on_a_kept_alive_connection() -> None:
    async with (
        RecordingBackend() as backend,
        running_gateway(config(backend.url, header_timeout=0.5), admin=False) as gw,
    ):
        reader, writer = await asyncio.open_connection(*address(gw.url))
        writer.write(HEAD + b"\r\n")
        first = await reader.readuntil(b"ok")
        assert first.startswith(b"HTTP/1.1 200 ")
        await asyncio.sleep(0.7)  # idle longer than the head timeout: keep-alive governs this
        writer.write(HEAD)  # then half a head
        started = time.monotonic()
        assert await closed_within(reader, 2.0) == b""
        assert 0.4 <= time.monotonic() - started < 1.5
        writer.close()
        assert len(backend.bodies) == 1
        silent_reader, silent = await asyncio.open_connection(*address(gw.url))
        started = time.monotonic()  # a connection that never sends a byte: cut the same way
        assert await closed_within(silent_reader, 2.0) == b""
        assert 0.4 <= time.monotonic() - started < 1.5
        silent.close()


async def test_idle_keepalive_connection_is_closed() -> None:
    async with (
        RecordingBackend() as backend,
        running_gateway(config(backend.url, keepalive_timeout=0.5), admin=False) as gw,
    ):
        reader, writer = await asyncio.open_connection(*address(gw.url))
        writer.write(HEAD + b"\r\n")
        await reader.readuntil(b"ok")
        started = time.monotonic()
        assert await closed_within(reader, 3.0) == b""
        assert 0.4 <= time.monotonic() - started < 2.0
        writer.close()


async def test_stalled_body_gets_408_and_is_never_forwarded_complete() -> None:
    async with (
        RecordingBackend() as backend,
        running_gateway(config(backend.url), admin=False) as gw,
    ):
        reader, writer = await asyncio.open_connection(*address(gw.url))
        writer.write(b"POST /slow HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
        answer = await closed_within(reader, 3.0)
        writer.close()
        assert answer is not None, "the connection stayed open after the 408"
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert b'"type":"request_timeout"' in answer
        assert backend.bodies == []


async def test_max_connections_closes_new_connections_beyond_the_limit() -> None:
    async with (
        RecordingBackend() as backend,
        running_gateway(config(backend.url, max_connections=5), admin=False) as gw,
    ):
        host, port = address(gw.url)
        held = []
        for _ in range(5):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(HEAD + b"\r\n")
            await reader.readuntil(b"ok")
            held.append((reader, writer))
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(HEAD + b"\r\n")
        assert await closed_within(reader, 1.0) == b""
        writer.close()
        assert gw.gateway.listeners[0].http.refused.value == 1
        assert gw.gateway.core.connections_refused.value == 1  # kairos_connections_refused_total
        held.pop()[1].close()
        await asyncio.sleep(0.1)
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(HEAD + b"Connection: close\r\n\r\n")
        assert (await closed_within(reader, 2.0) or b"").startswith(b"HTTP/1.1 200 ")
        writer.close()
        for _, other in held:
            other.close()
        assert len(backend.bodies) == 6


async def test_oversized_upload_still_sees_its_413_then_the_connection_closes() -> None:
    async with (
        RecordingBackend() as backend,
        running_gateway(
            {**config(backend.url), "server": {"max_body_size": 1000}}, admin=False
        ) as gw,
    ):
        reader, writer = await asyncio.open_connection(*address(gw.url))
        writer.write(b"POST /big HTTP/1.1\r\nHost: a\r\nContent-Length: 400000\r\n\r\n")
        for _ in range(40):  # keeps uploading after the gateway has answered
            writer.write(b"x" * 10_000)
            await writer.drain()
            await asyncio.sleep(0.005)
        answer = await closed_within(reader, 3.0)
        writer.close()
        assert answer is not None, "the connection stayed open after the 413"
        assert answer.startswith(b"HTTP/1.1 413 ")
        assert b"Connection: close" in answer
        assert backend.bodies == []
