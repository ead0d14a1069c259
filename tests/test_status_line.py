"""The status line the gateway writes: the standard phrase, a backend's own, never a split."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from aiohttp.http import HttpVersion11
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
