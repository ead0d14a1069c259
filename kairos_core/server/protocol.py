"""aiohttp's low-level server with JSON errors for malformed requests (400/414/431)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web, web_protocol
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong

log = logging.getLogger("kairos.server")

_METHOD_PREFIXES = (b"GET ", b"POST ", b"PUT ", b"HEAD ", b"DELETE ", b"PATCH ", b"OPTIONS ")


class KairosRequestHandler(web_protocol.RequestHandler):
    """One client connection: aiohttp's parser, our error bodies, and the real client address."""

    client_peer: str = ""
    """The client's address (from the socket, or from a PROXY protocol header)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Remember the peer address unless a PROXY header already supplied one."""
        if not self.client_peer:
            peer = transport.get_extra_info("peername")
            self.client_peer = peer[0] if isinstance(peer, tuple) else "unix"
        super().connection_made(transport)

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

    def __init__(self, handler: Any, *, handler_cancellation: bool = True, **kwargs: Any) -> None:
        super().__init__(handler, handler_cancellation=handler_cancellation, **kwargs)
        self._handler_kwargs = kwargs

    def __call__(self) -> KairosRequestHandler:
        """Create the protocol object for a new connection."""
        return KairosRequestHandler(self, loop=self._loop, **self._handler_kwargs)
