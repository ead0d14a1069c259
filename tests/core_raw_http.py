"""Raw-socket HTTP/1.1 peers for framing tests: scripted backends that write exact bytes, a
recording backend that keeps every byte it receives, and a raw client exchange."""

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


@dataclass
class Answer:
    """What came back on one connection."""

    data: bytes
    closed: bool
    """Whether the gateway closed the connection (EOF) within the read timeout."""

    @property
    def status(self) -> int | None:
        """The status of the first response, None when nothing came back."""
        if not self.data.startswith(b"HTTP/1."):
            return None
        return int(self.data[9:12])


async def exchange(host: str, port: int, raw: bytes, timeout: float = 2.0) -> Answer:
    """Send `raw`; read until EOF, a complete 200 response, or `timeout`."""
    reader, writer = await asyncio.open_connection(host, port)
    data = b""
    closed = False
    try:
        writer.write(raw)
        await writer.drain()
        async with asyncio.timeout(timeout):
            while chunk := await reader.read(65536):
                data += chunk
                if _complete_200(data):
                    break
            else:
                closed = True
    except (TimeoutError, ConnectionError):
        closed = closed or writer.transport.is_closing()
    finally:
        writer.close()
    return Answer(data, closed)


def _complete_200(data: bytes) -> bool:
    """Whether `data` holds a whole 200 response with a Content-Length (a kept-alive answer)."""
    head, found, body = data.partition(b"\r\n\r\n")
    if not found or not head.startswith(b"HTTP/1.1 200 "):
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


@dataclass
class RecordingBackend:
    """A raw-socket HTTP/1.1 backend that keeps every byte it receives and answers 200."""

    received: bytearray = field(default_factory=bytearray)
    bodies: list[bytes] = field(default_factory=list)
    connections: int = 0
    server: asyncio.Server | None = None
    port: int = 0
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)  # type: ignore[arg-type]
        inner = asyncio.StreamReader()

        async def pump() -> None:
            while chunk := await reader.read(65536):
                self.received += chunk
                inner.feed_data(chunk)
            inner.feed_eof()

        pumping = asyncio.create_task(pump())
        try:
            while (request := await read_request(inner)) is not None:
                self.bodies.append(request.body)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (ConnectionError, ValueError, asyncio.IncompleteReadError):
            pass
        finally:
            pumping.cancel()
            writer.close()

    @property
    def url(self) -> str:
        """The backend's base URL."""
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> RecordingBackend:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self._writers:
            writer.transport.abort()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2)
        await self.server.wait_closed()
