"""The lean HTTP/1.1 server: an asyncio.Protocol on httptools' request parser.

It serves the common case itself (HTTP/1.1, no request body or one with a Content-Length, no
Upgrade) and hands everything else, from the first byte of that request on, to aiohttp's server
(`KairosServer`): chunked uploads, HTTP/1.0, WebSocket upgrades and every malformed or oversized
request, so those keep aiohttp's exact framing rules and error answers.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import TYPE_CHECKING, cast

from httptools import HttpParserError, HttpParserUpgrade, HttpRequestParser
from multidict import CIMultiDict, CIMultiDictProxy

from kairos_core.forwarding import REWRITTEN_UPSTREAM
from kairos_core.metrics import CounterChild
from kairos_core.response import error_response
from kairos_core.server.lean_request import EMPTY_BODY, LeanRequest, LeanWriter, RequestBody
from kairos_core.server.protocol import KairosServer

if TYPE_CHECKING:
    from kairos_core.config.models import ServerConfig
    from kairos_core.server.handler import HttpEntry

log = logging.getLogger("kairos.server")

_CONTENT_LENGTH = 1
_HOST = 2
_HANDED_OVER = 0
_CONNECTION = -1
_EXPECT = -2
_REWRITTEN = -3
_SPECIAL: dict[bytes, int] = {
    b"content-length": _CONTENT_LENGTH,
    b"host": _HOST,
    # the other fields a request may carry once (RFC 9110); a repeat goes to aiohttp, which
    # refuses it
    b"content-location": 4,
    b"content-range": 8,
    b"content-type": 16,
    b"etag": 32,
    b"max-forwards": 64,
    b"server": 128,
    b"user-agent": 256,
    # requests aiohttp serves: chunked bodies, WebSocket and other upgrades
    b"transfer-encoding": _HANDED_OVER,
    b"upgrade": _HANDED_OVER,
    b"sec-websocket-key1": _HANDED_OVER,
    b"connection": _CONNECTION,
    b"expect": _EXPECT,
}
"""Header fields the lean front looks at: singletons (a bit each), hand-over ones, and others."""
for _name in REWRITTEN_UPSTREAM:  # a request with any of these is not `forwardable`
    _SPECIAL.setdefault(_name.encode(), _REWRITTEN)
_ERROR_BODY = error_response(500, "internal_error", "internal gateway error").body
assert isinstance(_ERROR_BODY, bytes)
_INTERNAL_ERROR = (
    b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%b" % (len(_ERROR_BODY), _ERROR_BODY)
)
"""The answer when the gateway itself failed before a response started."""
_LINGER_SECONDS = 5.0
"""How long an unread request body is drained after the response before the connection closes."""


class _Head:
    """Collects the request target and header fields while httptools parses a head."""

    __slots__ = ("fields", "url")

    def __init__(self) -> None:
        self.url = b""
        self.fields: list[tuple[bytes, bytes]] = []

    def on_url(self, url: bytes) -> None:
        """The request target (may come in pieces)."""
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        """One header field."""
        self.fields.append((name, value))


class LeanServer:
    """One HTTP listener's lean connections, with aiohttp's server behind for the rest."""

    def __init__(
        self,
        entry: HttpEntry,
        fallback: KairosServer,
        config: ServerConfig,
        refused: CounterChild,
    ) -> None:
        self.entry = entry
        self.fallback = fallback
        self.keepalive_timeout = config.keepalive_timeout
        self.header_timeout = config.header_timeout
        self.max_connections = config.max_connections
        self.max_head = config.max_header_size
        """Longest request head served here; a longer one goes to aiohttp (431 or 414 there)."""
        self.max_headers = config.max_headers
        self.refused = refused
        self.connections: set[LeanHttpProtocol] = set()
        self.closing = False
        self.loop = asyncio.get_running_loop()

    def __call__(self) -> LeanHttpProtocol:
        """Create the protocol object for a new connection."""
        return LeanHttpProtocol(self)

    def open_connections(self) -> int:
        """How many connections are open, lean or handed over."""
        return len(self.connections) + self.fallback.open_connections()

    def full(self) -> bool:
        """Whether `max_connections` connections are open."""
        return self.open_connections() >= self.max_connections

    def pre_shutdown(self) -> None:
        """Close idle connections now; busy ones close after their response."""
        self.closing = True
        for connection in list(self.connections):
            connection.close_if_idle()
        self.fallback.pre_shutdown()

    async def shutdown(self, timeout: float) -> None:
        """Wait up to `timeout` for requests in progress, then close every connection."""
        deadline = self.loop.time() + timeout
        while any(c.busy for c in self.connections) and self.loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)  # polls: a shutdown happens once, requests finish often
        for connection in list(self.connections):
            connection.abort()
        await self.fallback.shutdown(max(deadline - self.loop.time(), 0.0))


class LeanHttpProtocol(asyncio.Protocol):
    """One client connection: parse heads, run requests one at a time, keep alive."""

    def __init__(self, server: LeanServer) -> None:
        self.server = server
        self.loop = server.loop
        self._entry = server.entry.serve
        self.transport: asyncio.Transport | None = None
        self.client_peer = ""
        """The client's address (from the socket, or from a PROXY protocol header)."""
        self.write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._buffer = b""
        self._body: RequestBody | None = None
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        """The request head deadline, or the lingering deadline of an unread body."""
        self._idle_timer: asyncio.TimerHandle | None = None
        self._idle_since: float | None = None
        """When the connection last became idle between requests (None while it is not)."""
        self.writer = LeanWriter(self)
        """Writes the responses (one per connection; `output_size` restarts with each request)."""
        self._reading_paused = False
        self._force_close = False
        self._head = _Head()
        self._parser: HttpRequestParser | None = None
        """Kept from one request to the next while they come without a body (llhttp resets
        itself after each complete message; a body the parser did not see needs a new one)."""

    @property
    def busy(self) -> bool:
        """Whether a request is being served."""
        return self._task is not None

    # --- asyncio callbacks -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Refuse when the listener is full; else start the request head deadline."""
        transport = cast("asyncio.Transport", transport)  # uvloop's are not asyncio.Transport
        server = self.server
        if server.full():
            server.refused.inc()
            transport.abort()
            return
        self.transport = transport
        if not self.client_peer:
            peer = transport.get_extra_info("peername")
            self.client_peer = peer[0] if isinstance(peer, tuple) else "unix"
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        server.connections.add(self)
        self._timer = self.loop.call_later(server.header_timeout, self._head_timed_out)

    def data_received(self, data: bytes) -> None:
        """Body bytes go to the current request; the rest is parsed when no request runs."""
        body = self._body
        if body is not None:
            need = body.remaining
            if len(data) < need:
                body.feed(data)
                return
            body.feed(data[:need])
            self._body = None
            data = data[need:]
            if body.discard:  # what follows the drained body is the next request
                self._buffer = data
                self._after_discard()
                return
            if not data:
                return
        self._buffer = self._buffer + data if self._buffer else data
        if self._task is None and self._body is None:
            self._idle_since = None
            self._next()
        elif len(self._buffer) > self.server.max_head:
            self.pause_reading()  # pipelined requests wait; so does the client

    def connection_lost(self, exc: BaseException | None) -> None:
        """Fail the body being read, stop the request being served, forget the connection."""
        self.server.connections.discard(self)
        self.transport = None
        self._cancel_timers()
        if self._body is not None:
            self._body.fail(ConnectionResetError("the client closed the connection"))
            self._body = None
        if self._task is not None:
            self._task.cancel()
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionResetError("the client closed the connection"))

    def pause_writing(self) -> None:
        """The client reads slower than we write."""
        self.write_paused = True

    def resume_writing(self) -> None:
        """The client caught up."""
        self.write_paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # --- used by the request, its body and the server ------------------------------------------

    async def drain(self) -> None:
        """Wait until the client has read enough of what was written."""
        if self.transport is None:
            raise ConnectionResetError("the client closed the connection")
        waiter = self._drain_waiter = self.loop.create_future()
        try:
            await waiter
        finally:
            self._drain_waiter = None

    def pause_reading(self) -> None:
        """Stop reading from the client for now."""
        if not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        """Read from the client again."""
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()

    def force_close(self) -> None:
        """Close the connection once the current response is out."""
        self._force_close = True

    def close_if_idle(self) -> None:
        """Close now unless a request is being served (shutdown)."""
        if self._task is None and self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Close at once."""
        if self.transport is not None:
            self.transport.abort()

    # --- the request cycle ---------------------------------------------------------------------

    def _next(self) -> None:
        """Start the request whose head is at the front of the buffer, or wait for it."""
        buffer = self._buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > self.server.max_head or b"\n\n" in buffer:
                self._hand_over()
            elif self._timer is None and buffer:
                self._timer = self.loop.call_later(self.server.header_timeout, self._head_timed_out)
            return
        end += 4
        request = self._parse_head(buffer[:end]) if end <= self.server.max_head else None
        if request is None:
            self._hand_over()
            return
        self._cancel_timer()
        rest = buffer[end:]
        length = request.content_length
        if length:
            body = request.content
            assert isinstance(body, RequestBody)
            if rest:
                taken = rest[:length]
                body.feed(taken)
                rest = rest[len(taken) :]
            if body.remaining:
                self._body = body
        self._buffer = rest
        self._task = self.loop.create_task(self._serve(request))

    def _parse_head(self, head: bytes) -> LeanRequest | None:
        """The request in `head`, or None when aiohttp should have it.

        llhttp's strict mode (httptools' default) already refuses bare LF line ends, NUL and
        other control characters, whitespace before the colon and obs-fold.
        """
        collected = self._head
        collected.url = b""
        fields = collected.fields = []
        parser = self._parser
        if parser is None:
            parser = HttpRequestParser(collected)
        self._parser = None  # until this head turns out complete, bodiless and served here
        try:
            parser.feed_data(head)
        except (HttpParserError, HttpParserUpgrade):
            return None
        if parser.should_upgrade() or parser.get_http_version() != "1.1":
            return None
        method = parser.get_method().decode("ascii")
        if method == "CONNECT" or len(fields) > self.server.max_headers:
            return None
        items = []
        seen = 0
        length: int | None = None
        keep_alive = True
        expects = False
        forwardable = True
        for name, value in fields:
            value = value.rstrip(b" \t")
            special = _SPECIAL.get(name.lower())
            if special is not None:
                if special > 0:  # a singleton field
                    if seen & special:
                        return None
                    seen |= special
                    if special == _CONTENT_LENGTH:
                        length = int(value)
                elif special == _HANDED_OVER:
                    return None
                else:
                    forwardable = False
                    if special == _CONNECTION:
                        lowered = value.lower()
                        if b"close" in lowered:
                            keep_alive = not any(t.strip() == b"close" for t in lowered.split(b","))
                    elif special == _EXPECT:
                        expects = value.lower() == b"100-continue"
            items.append(
                (name.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape"))
            )
        if not seen & _HOST:
            return None  # aiohttp answers the missing Host with its 400
        if not length:
            self._parser = parser
        writer = self.writer
        writer.output_size = 0
        return LeanRequest(
            self,
            method,
            collected.url.decode("utf-8", "surrogateescape"),
            CIMultiDictProxy(CIMultiDict(items)),
            length,
            keep_alive,
            RequestBody(self, length, expects) if length else EMPTY_BODY,
            writer,
            forwardable,
        )

    async def _serve(self, request: LeanRequest) -> None:
        """Run one request through the gateway and decide what the connection does next."""
        keep_alive = False
        try:
            keep_alive = await self._entry(request) is True
        except asyncio.CancelledError:
            return  # the client went away (connection_lost cancelled us)
        except ConnectionError:
            self._force_close = True  # the client went away while the response was written
        except Exception:
            log.exception("unhandled error while serving %s", request.raw_path)
            if request.writer.output_size == 0 and self.transport is not None:
                self.transport.write(_INTERNAL_ERROR)
            self._force_close = True
        finally:
            self._task = None
        self._after_response(request, keep_alive)

    def _after_response(self, request: LeanRequest, keep_alive: bool) -> None:
        transport = self.transport
        if transport is None:
            return
        body = request.content if isinstance(request.content, RequestBody) else None
        unread = body is not None and body.remaining > 0
        if body is not None and body.waits_for_continue and body.remaining == body.length:
            keep_alive = unread = False  # the client may or may not send it now: do not guess
        if self._force_close or self.server.closing or (not keep_alive and not unread):
            transport.close()
            return
        if body is not None and unread:  # drain the rest first, so the client sees our answer
            body.discard = True
            self.resume_reading()
            self._timer = self.loop.call_later(_LINGER_SECONDS, self.abort)
            if not keep_alive:
                self._force_close = True
            return
        self._continue()

    def _after_discard(self) -> None:
        """The unread body has been drained: close, or go on with the next request."""
        self._cancel_timer()
        if self._force_close:
            if self.transport is not None:
                self.transport.close()
            return
        self._continue()

    def _continue(self) -> None:
        self.resume_reading()
        if self._buffer:
            self._next()
        else:
            self._idle_since = self.loop.time()
            if self._idle_timer is None:  # one timer, moved on when it fires early (as aiohttp)
                self._idle_timer = self.loop.call_later(
                    self.server.keepalive_timeout, self._idle_timed_out
                )

    def _hand_over(self) -> None:
        """Give the connection, from the current request on, to aiohttp's server."""
        transport = self.transport
        if transport is None:
            return
        self._cancel_timers()
        self.server.connections.discard(self)
        data, self._buffer = self._buffer, b""
        handler = self.server.fallback()
        handler.client_peer = self.client_peer
        handler.handed_over = True
        self.transport = None
        transport.set_protocol(handler)
        handler.connection_made(transport)
        if self._reading_paused:
            transport.resume_reading()
        if data:
            handler.data_received(data)

    def _head_timed_out(self) -> None:
        """Drop a connection still waiting for the rest of a request head (slowloris)."""
        self._timer = None
        if self._task is None and self._body is None and self.transport is not None:
            log.debug(
                "%s: no complete request head in %.1fs",
                self.client_peer,
                self.server.header_timeout,
            )
            self.transport.abort()

    def _idle_timed_out(self) -> None:
        self._idle_timer = None
        since = self._idle_since
        if since is None or self.transport is None:
            return  # busy again; the next idle spell starts a timer
        left = since + self.server.keepalive_timeout - self.loop.time()
        if left > 0:
            self._idle_timer = self.loop.call_later(left, self._idle_timed_out)
            return
        if self._task is None and not self._buffer and self.transport is not None:
            self.transport.close()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _cancel_timers(self) -> None:
        self._cancel_timer()
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
