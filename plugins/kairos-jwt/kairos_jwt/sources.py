"""Reading the token from a request (bearer, header, cookie, query) and removing it before proxying."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from urllib.parse import unquote_plus

from multidict import istr

from kairos_core import RequestContext
from kairos_jwt import errors
from kairos_jwt.config import TokenSource
from kairos_jwt.errors import TokenRejected

Reader = Callable[[RequestContext], str | None]
Stripper = Callable[[RequestContext], None]


def _bearer(header: str) -> Reader:
    header = istr(header)  # looked up on every request: lower-cased once

    def read(ctx: RequestContext) -> str | None:
        value = ctx.request.headers.get(header)
        if not value:
            return None
        scheme, _, credential = value.strip().partition(" ")
        if scheme.lower() != "bearer":
            return None  # another scheme (Basic, ApiKey...): not ours
        credential = credential.strip()
        if not credential:
            raise TokenRejected(errors.MALFORMED, "malformed token: empty bearer credential")
        return credential

    return read


def _header(header: str) -> Reader:
    header = istr(header)

    def read(ctx: RequestContext) -> str | None:
        return ctx.request.headers.get(header) or None

    return read


def _cookie(name: str) -> Reader:
    def read(ctx: RequestContext) -> str | None:
        return ctx.request.cookies.get(name) or None

    return read


def query_parameter(query: str, name: str) -> str | None:
    """The first value of `name` in a query string, decoded as `parse_qsl` does; None if empty.

    Only the parameter asked for is decoded: parsing the whole query (`request.query`) costs
    several µs per request when a token travels in it.
    """
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if key == name or (("%" in key or "+" in key) and unquote_plus(key) == name):
            if "%" in value or "+" in value:
                value = unquote_plus(value)
            return value or None
    return None


def _query(name: str) -> Reader:
    def read(ctx: RequestContext) -> str | None:
        target = ctx.request.raw_path
        start = target.find("?")
        if start < 0:
            return None
        return query_parameter(target[start + 1 :].partition("#")[0], name)

    return read


def _drop_header(header: str) -> Stripper:
    header = istr(header)

    def strip(ctx: RequestContext) -> None:
        ctx.headers.popall(header, None)

    return strip


def _drop_cookie(name: str) -> Stripper:
    def strip(ctx: RequestContext) -> None:
        kept = [
            part.strip()
            for value in ctx.headers.getall("Cookie", [])
            for part in value.split(";")
            if part.strip() and part.strip().partition("=")[0].strip() != name
        ]
        ctx.headers.popall("Cookie", None)
        if kept:
            ctx.headers["Cookie"] = "; ".join(kept)

    return strip


def _drop_query(name: str) -> Stripper:
    def strip(ctx: RequestContext) -> None:
        if ctx.query_string:
            ctx.query_string = "&".join(
                part
                for part in ctx.query_string.split("&")
                if unquote_plus(part.partition("=")[0]) != name
            )

    return strip


def compile_source(source: TokenSource) -> tuple[Reader, Stripper]:
    """The reader and stripper for one configured source."""
    if source.source == "bearer":
        header = source.name or "Authorization"
        return _bearer(header), _drop_header(header)
    assert source.name is not None
    if source.source == "header":
        return _header(source.name), _drop_header(source.name)
    if source.source == "cookie":
        return _cookie(source.name), _drop_cookie(source.name)
    return _query(source.name), _drop_query(source.name)


class TokenLocator:
    """Tries the configured sources in order; remembers how to strip the one that matched."""

    def __init__(self, sources: Sequence[TokenSource]) -> None:
        self._sources = tuple(compile_source(s) for s in sources)

    def find(self, ctx: RequestContext) -> tuple[str, Stripper] | None:
        """The first token found and its stripper, or None when the request carries none."""
        for read, strip in self._sources:
            token = read(ctx)
            if token is not None:
                return token, strip
        return None
