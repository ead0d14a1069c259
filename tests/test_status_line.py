"""The status line the gateway writes: the standard phrase, a backend's own, never a split."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiohttp.http import HttpVersion11
from core_raw_http import RawServer, serve_each
from multidict import CIMultiDict

from kairos_core.response import Response
from kairos_core.server.writer import _head

REQUEST = SimpleNamespace(version=HttpVersion11)


@pytest.mark.parametrize(
    ("status", "reason", "line"),
    [
        (200, None, b"HTTP/1.1 200 OK"),
        (200, "OK", b"HTTP/1.1 200 OK"),
        (200, "Fine", b"HTTP/1.1 200 Fine"),  # a backend's own phrase is kept
        (404, "Not Found", b"HTTP/1.1 404 Not Found"),
        (599, None, b"HTTP/1.1 599 Unknown"),
        (599, "Custom", b"HTTP/1.1 599 Custom"),
        (200, "OK\r\nX-Injected: 1", b"HTTP/1.1 200 OK"),  # a stage's phrase cannot split it
        (599, "a\nb", b"HTTP/1.1 599 Unknown"),
    ],
)
def test_status_line(status: int, reason: str | None, line: bytes) -> None:
    response = Response(status, CIMultiDict({"X-A": "1"}), b"", reason)
    head = _head(REQUEST, response, "", True)  # type: ignore[arg-type]
    assert head.split(b"\r\n")[0] == line
    assert b"X-Injected" not in head and head.count(b"\n") == head.count(b"\r\n")


@pytest.mark.parametrize(
    ("backend_line", "client_line"),
    [
        (b"HTTP/1.1 200 OK", b"HTTP/1.1 200 OK"),
        (b"HTTP/1.1 200 Fine", b"HTTP/1.1 200 Fine"),
        (b"HTTP/1.1 299 Custom", b"HTTP/1.1 299 Custom"),
        (b"HTTP/1.1 200 ", b"HTTP/1.1 200 OK"),
    ],
)
async def test_the_backends_status_line_through_the_gateway(
    kairos_gateway, backend_line: bytes, client_line: bytes
) -> None:
    """A real backend's reason phrase reaches a raw client as sent; an empty one becomes standard."""
    answer = backend_line + b"\r\nContent-Length: 2\r\n\r\nok"
    async with RawServer(serve_each(answer)) as backend:
        gw = await kairos_gateway(
            {"routes": [{"prefix": "/", "upstream": {"backends": [{"url": backend.url}]}}]}
        )
        host, port = gw.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        writer.close()
    assert head.split(b"\r\n")[0] == client_line
