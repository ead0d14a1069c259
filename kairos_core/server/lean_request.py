"""The request object of the lean server: what stages read, at a fraction of aiohttp's cost."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from aiohttp._cookie_helpers import parse_cookie_header
from aiohttp.http import HttpVersion, HttpVersion11
from aiohttp.web import BaseRequest
from multidict import CIMultiDictProxy, MultiDict, MultiDictProxy

if TYPE_CHECKING:
    from kairos_core.server.lean_protocol import LeanHttpProtocol

_PAUSE_AT = 256 * 1024
"""Buffered body bytes at which the connection stops reading until a stage catches up."""


class RequestBody:
    """The request body as it arrives: `readany`/`read` wait for bytes, with flow control."""

    __slots__ = (
        "_chunks",
        "_error",
        "_protocol",
        "_size",
        "_waiter",
        "discard",
        "length",
        "remaining",
        "waits_for_continue",
    )

    def __init__(
        self, protocol: LeanHttpProtocol, length: int, waits_for_continue: bool = False
    ) -> None:
        self._protocol = protocol
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._waiter: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self.length = length
        self.remaining = length
        """Body bytes not yet received from the client."""
        self.waits_for_continue = waits_for_continue
        """The client sent `Expect: 100-continue` (it may never send a body nobody asked for)."""
        self.discard = False
        """Drop what arrives (the response is out and nobody will read the rest)."""

    def feed(self, data: bytes) -> None:
        """Take body bytes from the connection (never more than `remaining`)."""
        self.remaining -= len(data)
        if self.discard:
            return
        self._chunks.append(data)
        self._size += len(data)
        self._wake()
        if self._size >= _PAUSE_AT:
            self._protocol.pause_reading()

    def fail(self, error: BaseException) -> None:
        """The connection was lost before the whole body arrived."""
        if self.remaining:
            self._error = error
            self._wake()

    def at_eof(self) -> bool:
        """True when the whole body has been received and read."""
        return not self.remaining and not self._chunks

    async def readany(self) -> bytes:
        """Whatever body bytes are buffered (waiting for some); b"" at the end."""
        await self._wait()
        chunks = self._chunks
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._taken(len(data))
        return data

    async def read(self, n: int = -1) -> bytes:
        """Up to `n` bytes (all of the body when `n` is negative); b"" at the end."""
        if n < 0:
            parts = []
            while chunk := await self.readany():
                parts.append(chunk)
            return b"".join(parts)
        await self._wait()
        chunks = self._chunks
        data = chunks.popleft()
        if len(data) > n:
            chunks.appendleft(data[n:])
            data = data[:n]
        self._taken(len(data))
        return data

    async def _wait(self) -> None:
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if not self.remaining:
                break
            self._waiter = self._protocol.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if not self._chunks:
            self._chunks.append(b"")

    def _taken(self, size: int) -> None:
        was = self._size
        self._size = was - size
        if was >= _PAUSE_AT > self._size:
            self._protocol.resume_reading()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class EmptyBody:
    """The body of a request without one."""

    __slots__ = ()

    def at_eof(self) -> bool:
        """Always at the end."""
        return True

    async def readany(self) -> bytes:
        """Nothing."""
        return b""

    async def read(self, n: int = -1) -> bytes:
        """Nothing."""
        return b""


EMPTY_BODY = EmptyBody()


class LeanWriter:
    """Writes response bytes to the connection, waiting while the client reads slowly."""

    __slots__ = ("_protocol", "output_size")

    def __init__(self, protocol: LeanHttpProtocol) -> None:
        self._protocol = protocol
        self.output_size = 0
        """Response bytes written so far (a response has started once this is above 0)."""

    async def write(self, data: bytes) -> None:
        """Write `data`; raises ConnectionResetError once the client has gone."""
        protocol = self._protocol
        transport = protocol.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the client closed the connection")
        transport.write(data)
        self.output_size += len(data)
        if protocol.write_paused:
            await protocol.drain()


class LeanRequest:
    """One request read by the lean server; the subset of aiohttp's `BaseRequest` Kairos uses."""

    __slots__ = (
        "_cookies",
        "_query",
        "content",
        "content_length",
        "forwardable",
        "headers",
        "keep_alive",
        "method",
        "protocol",
        "raw_path",
        "writer",
    )

    version: HttpVersion = HttpVersion11

    def __init__(
        self,
        protocol: LeanHttpProtocol,
        method: str,
        raw_path: str,
        headers: CIMultiDictProxy[str],
        content_length: int | None,
        keep_alive: bool,
        content: RequestBody | EmptyBody,
        writer: LeanWriter,
        forwardable: bool = False,
    ) -> None:
        self.protocol = protocol
        self.method = method
        self.raw_path = raw_path
        """The request target as sent (path and query)."""
        self.headers = headers
        self.content_length = content_length
        self.keep_alive = keep_alive
        """Whether the client allows another request on this connection."""
        self.content = content
        self.writer = writer
        self.forwardable = forwardable
        """No header field is one the gateway drops or rewrites upstream (`REWRITTEN_UPSTREAM`)."""
        self._query: MultiDictProxy[str] | None = None
        self._cookies: Mapping[str, str] | None = None

    @property
    def body_exists(self) -> bool:
        """Whether the request has a body."""
        return bool(self.content_length)

    @property
    def transport(self) -> asyncio.Transport | None:
        """The client connection's transport (None once closed)."""
        return self.protocol.transport

    @property
    def query(self) -> MultiDictProxy[str]:
        """The query string's parameters."""
        if self._query is None:
            query = self.raw_path.partition("?")[2].partition("#")[0]
            self._query = MultiDictProxy(MultiDict(parse_qsl(query, keep_blank_values=True)))
        return self._query

    @property
    def cookies(self) -> Mapping[str, str]:
        """The request's cookies, parsed as aiohttp does."""
        if self._cookies is None:
            parsed = parse_cookie_header(self.headers.get("Cookie", ""))
            self._cookies = MappingProxyType({name: morsel.value for name, morsel in parsed})
        return self._cookies


IncomingRequest = LeanRequest | BaseRequest
"""A request as stages see it: the lean server's, or aiohttp's for the requests it serves."""
