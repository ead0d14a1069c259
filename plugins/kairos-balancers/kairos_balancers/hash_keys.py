"""What a consistent-hash balancer hashes: client IP, a header, a cookie or the path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal
from zlib import crc32

from kairos_core import RequestContext

KeySource = Literal["client_ip", "header", "cookie", "path"]

KeyReader = Callable[[RequestContext], str | None]


def key_hash(key: str) -> int:
    """A 32-bit hash of a request key, identical in every worker and process (CRC-32)."""
    return crc32(key.encode("utf-8", "surrogatepass"))


def cookie_value(header_values: list[str], name: str) -> str | None:
    """The value of cookie `name` in `Cookie` header values, without surrounding quotes."""
    needle = name + "="
    for header in header_values:
        at = header.find(needle)
        while at >= 0:
            before = header[:at].rstrip(" \t")
            if not before or before[-1] == ";":
                end = header.find(";", at)
                value = header[at + len(needle) : end if end >= 0 else None].strip()
                if len(value) >= 2 and value[0] == value[-1] == '"':
                    value = value[1:-1]
                return value
            at = header.find(needle, at + 1)
    return None


def key_reader(
    source: KeySource, header: str | None, cookie: str | None, include_query: bool
) -> KeyReader:
    """A function returning the request's key (None when the request does not carry it)."""
    if source == "client_ip":

        def client_ip(ctx: RequestContext) -> str | None:
            return ctx.client_ip or None

        return client_ip
    if source == "header":
        assert header is not None
        header_name = header

        def header_value(ctx: RequestContext) -> str | None:
            return ctx.headers.get(header_name) or None

        return header_value
    if source == "cookie":
        assert cookie is not None
        cookie_name = cookie

        def cookie_key(ctx: RequestContext) -> str | None:
            values = ctx.headers.getall("Cookie", None)
            return (cookie_value(values, cookie_name) or None) if values else None

        return cookie_key
    if include_query:

        def path_and_query(ctx: RequestContext) -> str | None:
            return ctx.request.raw_path

        return path_and_query

    def path(ctx: RequestContext) -> str | None:
        return ctx.path

    return path
