"""Raw-socket HTTP/1.1 backends for framing tests: scripted handlers write exact bytes."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from kairos_core.config.models import BackendConfig, UpstreamConfig
from kairos_core.upstream.pool import Backend


@dataclass
class RawRequest:
    """One request as it arrived on the wire."""

    head: bytes
    body: bytes
    chunked: bool

    @property
    def line(self) -> bytes:
        """The request line."""
        return self.head.split(b"\r\n", 1)[0]

    def header(self, name: str) -> str | None:
        """The first value of a header (case-insensitive)."""
        wanted = name.lower().encode()
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == wanted:
                return value.strip().decode()
        return None


async def read_request(reader: asyncio.StreamReader) -> RawRequest | None:
    """Read one request (head and Content-Length or chunked body); None at a clean EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    request = RawRequest(head, b"", False)
    length = request.header("Content-Length")
    if length is not None:
        request.body = await reader.readexactly(int(length))
    elif (request.header("Transfer-Encoding") or "").lower() == "chunked":
        request.chunked = True
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        request.body = b"".join(parts)
    return request


Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "RawServer"], Awaitable[None]]


@dataclass
class RawServer:
    """A TCP (or TLS) server running `script` per connection; counts connections and requests."""

    script: Script
    host: str = "127.0.0.1"
    port: int = 0
    ssl_context: ssl.SSLContext | None = None
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    requests: list[RawRequest] = field(default_factory=list)
    closed_by_peer: int = 0
    server: asyncio.Server | None = None
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        self.writers.append(writer)
        try:
            await self.script(reader, writer, self)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.open_now -= 1
            writer.close()

    async def next_request(self, reader: asyncio.StreamReader) -> RawRequest | None:
        """Read and record the next request of a connection."""
        request = await read_request(reader)
        if request is None:
            self.closed_by_peer += 1
        else:
            self.requests.append(request)
        return request

    @property
    def url(self) -> str:
        """The backend URL (https when serving TLS)."""
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    async def __aenter__(self) -> RawServer:
        self.server = await asyncio.start_server(
            self._handle, self.host, self.port, ssl=self.ssl_context
        )
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            if not writer.transport.is_closing():
                writer.transport.abort()
        await self.server.wait_closed()


def serve_each(*responses: bytes) -> Script:
    """A script answering consecutive requests of a connection with `responses` (keep-alive)."""

    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        for response in responses:
            if await server.next_request(reader) is None:
                return
            writer.write(response)
            await writer.drain()
        await server.next_request(reader)  # wait until the client closes

    return script


def backend_for(url: str, **upstream: object) -> Backend:
    """A pool Backend for `url` built from an UpstreamConfig with `upstream` settings."""
    config = UpstreamConfig.model_validate({"backends": [{"url": url}], **upstream})
    return Backend("test", BackendConfig(url=url), config)
