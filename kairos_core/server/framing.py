"""Framing checks aiohttp's parsers leave to the application, run only for unusual requests."""

from __future__ import annotations

from aiohttp.http import HttpVersion10, HttpVersion11, RawRequestMessage


def framing_refusal(message: RawRequestMessage) -> tuple[int, str, str] | None:
    """Status, error type and message when the request's framing must be refused, else None.

    Called only when the version is not (the C parser's) HTTP/1.1 object or the body is chunked.
    """
    version = message.version
    if version != HttpVersion11 and version != HttpVersion10:
        return 505, "http_version_not_supported", "only HTTP/1.0 and HTTP/1.1 are served"
    if message.chunked:
        if version == HttpVersion10:
            return 400, "bad_framing", "Transfer-Encoding is not allowed in an HTTP/1.0 request"
        codings = message.headers.getall("Transfer-Encoding", ())
        if len(codings) != 1 or codings[0].strip(" \t").lower() != "chunked":
            return (
                501,
                "unsupported_transfer_coding",
                "only the chunked transfer coding is accepted, once",
            )
    return None
