"""Serialise a request head to bytes for one write: request line, end-to-end headers, framing."""

from __future__ import annotations

from aiohttp.hdrs import HOST
from multidict import CIMultiDict

from kairos_core.forwarding import HOP_BY_HOP, connection_named

# Never forwarded: connection-specific fields, `Expect` (the gateway answers 100-continue
# itself) and the framing fields, which are computed here from the body actually sent.
_DROP = HOP_BY_HOP | {"expect", "content-length"}
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


class InvalidRequestHead(ValueError):
    """A header name or value would break the request's framing (CR or LF inside)."""


def serialize_head(
    method: str,
    target: str,
    headers: CIMultiDict[str],
    host_header: str,
    body_length: int | None,
    streamed: bool,
) -> tuple[bytes, bool]:
    """The head's bytes and whether a streamed body goes chunked.

    `body_length` is the length of a bytes body (None for no body or a stream). A stream keeps
    the Content-Length the client declared and is sent raw; without one it is sent chunked.
    """
    declared: str | None = None
    if headers.keys().isdisjoint(_DROP):  # the usual case: every field goes, in one join
        lines = [f"{method} {target} HTTP/1.1", *map(": ".join, headers.items())]
        has_host = HOST in headers
    else:
        drop = _DROP | connection_named(headers)  # the fields it names are connection-specific
        lines = [f"{method} {target} HTTP/1.1"]
        has_host = False
        for name, value in headers.items():
            lower = name.lower()
            if lower in drop:
                if lower == "content-length":
                    declared = value
                continue
            if lower == "host":
                has_host = True
            lines.append(f"{name}: {value}")
    if not has_host:
        lines.append(f"Host: {host_header}")
    chunked = False
    if body_length is not None:
        lines.append(f"Content-Length: {body_length}")
    elif streamed:
        if declared is not None and declared.isdigit():
            lines.append(f"Content-Length: {declared}")
        else:
            lines.append("Transfer-Encoding: chunked")
            chunked = True
    elif declared is not None or method in _BODY_METHODS:
        lines.append("Content-Length: 0")
    lines.append("\r\n")
    text = "\r\n".join(lines)
    if text.count("\n") != len(lines) or text.count("\r") != len(lines):
        raise InvalidRequestHead("a header name or value contains CR or LF")
    return text.encode("utf-8", "surrogateescape"), chunked


def declared_length(headers: CIMultiDict[str]) -> int | None:
    """The Content-Length a streamed body promises, if any."""
    value = headers.get("Content-Length")
    return int(value) if value is not None and value.isdigit() else None
