"""aiohttp's low-level server with JSON errors for malformed requests (400/414/431), a request
head timeout against slow clients, and a cap on open connections."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, cast

from aiohttp import web, web_protocol
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong

from kairos_core.metrics import CounterChild

log = logging.getLogger("kairos.server")

_parse = web_protocol.RequestHandler.data_received  # called directly: cheaper than super()
_METHOD_PREFIXES = (b"GET ", b"POST ", b"PUT ", b"HEAD ", b"DELETE ", b"PATCH ", b"OPTIONS ")


class KairosRequestHandler(web_protocol.RequestHandler):
    """One client connection: aiohttp's parser, our error bodies, and the real client address."""

    client_peer: str = ""
    """The client's address (from the socket, or from a PROXY protocol header)."""
    header_timeout: float = 10.0
    """Seconds a request head may take to arrive in full."""
    handed_over: bool = False
    """The lean server accepted this connection and passed it on (it is not counted again)."""
    _head_timer: asyncio.TimerHandle | None = None
    _refused: bool = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Refuse the connection when the listener is full; else start the head timer."""
        server = self._manager
        if not self.handed_over and isinstance(server, KairosServer) and server.full():
            self._refused = True
            server.refused.inc()
            cast("asyncio.Transport", transport).abort()
            return
        if not self.client_peer:
            peer = transport.get_extra_info("peername")
            self.client_peer = peer[0] if isinstance(peer, tuple) else "unix"
        super().connection_made(transport)
        self._head_timer = self._loop.call_later(self.header_timeout, self._head_timed_out)

    def connection_lost(self, exc: BaseException | None) -> None:
        """Stop the head timer; a refused connection was never registered."""
        if self._refused:
            return
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Parse; a completed head stops the head timer, the first bytes of a later one start it."""
        count = self._request_count
        _parse(self, data)
        timer = self._head_timer
        if timer is not None:
            if self._request_count != count:
                timer.cancel()
                self._head_timer = None
        elif self._request_count == count and self._waiter is not None and data:
            # idle between requests (aiohttp waits for the next message) and part of a head came
            self._head_timer = self._loop.call_later(self.header_timeout, self._head_timed_out)

    def _head_timed_out(self) -> None:
        """Drop a connection still waiting for the rest of a request head (slowloris)."""
        self._head_timer = None
        waiter = self._waiter
        if waiter is not None and not waiter.done() and not self._messages:
            log.debug(
                "%s: no complete request head in %.1fs", self.client_peer, self.header_timeout
            )
            self.force_close()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """Answer parse errors with the gateway's JSON error body and close the connection."""
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; cannot send an error")
        error_type = "bad_request"
        text = "malformed HTTP request"
        if isinstance(exc, LineTooLong):
            line = exc.args[0] if exc.args else b""
            if isinstance(line, str):
                line = line.encode("latin-1", "replace")
            if bytes(line).startswith((b"/", b"http", *_METHOD_PREFIXES)):
                status, error_type, text = 414, "uri_too_long", "request line too long"
            else:
                status, error_type, text = (
                    431,
                    "headers_too_large",
                    "request header field too large",
                )
        elif isinstance(exc, BadHttpMessage) and "Too many headers" in str(exc):
            status, error_type, text = 431, "headers_too_large", "too many request header fields"
        elif isinstance(exc, BadHttpMessage):
            status, text = 400, f"malformed HTTP request: {exc.message}"
        elif status == 500:
            log.error("unhandled error while serving %s", request.rel_url, exc_info=exc)
            error_type, text = "internal_error", "internal gateway error"
        else:
            log.debug("HTTP error %s from %s: %s", status, self.client_peer, exc or message)
        body = json.dumps(
            {"status": status, "type": error_type, "message": text, "request_id": None}
        ).encode()
        response = web.Response(
            status=status, body=body, content_type="application/json", headers={"Server": "kairos"}
        )
        response.force_close()
        return response


class KairosServer(web.Server):
    """aiohttp's low-level `web.Server` creating KairosRequestHandler connections."""

    def __init__(
        self,
        handler: Any,
        *,
        handler_cancellation: bool = True,
        header_timeout: float = 10.0,
        max_connections: int = 10_000,
        refused: CounterChild | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, handler_cancellation=handler_cancellation, **kwargs)
        self._handler_kwargs = kwargs
        self.header_timeout = header_timeout
        self.max_connections = max_connections
        self.refused = refused if refused is not None else CounterChild()
        """Connections closed at once because `max_connections` were open."""

    def full(self) -> bool:
        """Whether `max_connections` connections are open."""
        return self.open_connections() >= self.max_connections

    def open_connections(self) -> int:
        """How many connections this server holds."""
        return len(self._connections)

    def __call__(self) -> KairosRequestHandler:
        """Create the protocol object for a new connection."""
        handler = KairosRequestHandler(self, loop=self._loop, **self._handler_kwargs)
        handler.header_timeout = self.header_timeout
        return handler
