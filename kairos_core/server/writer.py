"""Write a chain's Response to the client: bytes at once, streams chunk by chunk, gzip if asked."""

from __future__ import annotations

import email.utils
import logging
import time
import zlib
from collections.abc import AsyncIterator
from http import HTTPStatus

from aiohttp import HttpVersion11, web
from aiohttp.hdrs import CONTENT_LENGTH, DATE
from multidict import CIMultiDict

from kairos_core.config.models import CompressionConfig
from kairos_core.response import Response
from kairos_core.server.gzip_stream import gzip_stream
from kairos_core.server.lean_request import IncomingRequest

log = logging.getLogger("kairos.server")

_NO_BODY_STATUSES = frozenset({204, 304})


class ClientGone(Exception):
    """The client closed the connection while the response was being sent."""


class SentResponse(web.StreamResponse):
    """Stands in for a response Kairos wrote to the connection itself.

    aiohttp's own response objects cost tens of microseconds per request; Kairos serialises the
    head once and writes head and body through the connection's stream writer. aiohttp then
    only asks this object whether the connection may be kept alive.
    """

    def __init__(self, status: int, keep_alive: bool) -> None:
        super().__init__(status=status)
        self._kairos_keep_alive = keep_alive

    @property
    def keep_alive(self) -> bool:
        """Whether aiohttp may read another request from this connection."""
        return self._kairos_keep_alive

    async def prepare(self, request: web.BaseRequest) -> None:
        """Already sent."""
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        """Already sent."""
        return None


async def send_response(
    request: IncomingRequest,
    response: Response,
    compression: CompressionConfig | None,
) -> tuple[bool | web.StreamResponse, int]:
    """Send `response`; returns whether the connection may serve another request (or the
    aiohttp response a stage already sent, a WebSocket) and the body bytes sent. A mid-body
    upstream failure cuts the client connection short so the client can tell."""
    if response.sent is not None:
        await response.close()
        return response.sent, 0
    headers = response.headers
    body = response.body
    if compression is not None and _should_compress(request, response, compression):
        response.body = body = _gzip(response, compression)
    status = response.status
    no_body = request.method == "HEAD" or status in _NO_BODY_STATUSES or status < 200
    keep_alive = request.keep_alive and not response.close_connection
    writer = request.writer
    if isinstance(body, bytes):
        if not no_body:
            headers[CONTENT_LENGTH] = str(len(body))
        elif status in _NO_BODY_STATUSES or status < 200:
            headers.popall(CONTENT_LENGTH, None)
        failure: BaseException | None = None
        try:
            await writer.write(
                _head(request, response, "", keep_alive) + (b"" if no_body else body)
            )
        except BaseException as exc:  # not `finally` + `await`: see "Compiled hot path"
            failure = exc
        pending = response.close_now()
        if pending is not None:
            await pending
        if failure is not None:
            raise failure
        return keep_alive, 0 if no_body else len(body)
    if no_body:
        framing = ""
    elif CONTENT_LENGTH in headers:
        framing = "length"
    elif request.version >= HttpVersion11:
        framing = "chunked"
    else:
        framing = "close"  # an HTTP/1.0 client learns the end of the body from the close
        keep_alive = False
    head = _head(request, response, framing, keep_alive)
    sent = 0
    broken: Exception | None = None
    try:
        async for chunk in body:
            if no_body or not chunk:
                continue
            sent += len(chunk)
            data = b"%x\r\n%b\r\n" % (len(chunk), chunk) if framing == "chunked" else chunk
            if head:
                data, head = head + data, b""
            await writer.write(data)
    except Exception as exc:  # handled below: no `await` in an except block when compiled
        broken = exc
    await response.close()
    if broken is not None:
        if isinstance(broken, ConnectionError | ClientGone):
            raise broken
        log.warning("upstream body failed mid-response (%s): closing the client connection", broken)
        if head:  # nothing sent yet: answer with the head so the client is not left waiting
            await writer.write(head)
        transport = request.transport
        if transport is not None:
            transport.close()
        return False, sent
    await writer.write(head + (b"0\r\n\r\n" if framing == "chunked" else b""))
    return keep_alive, sent


_SENT: dict[bool, SentResponse] = {}


def sent_stand_in(keep_alive: bool) -> SentResponse:
    """One shared stand-in per keep-alive verdict (aiohttp only reads `keep_alive` from it)."""
    sent = _SENT.get(keep_alive)
    if sent is None:
        sent = _SENT[keep_alive] = SentResponse(200, keep_alive)
    return sent


_DATE = {"second": -1, "value": ""}


def _date() -> str:
    """The Date header value, formatted once a second."""
    now = int(time.time())
    if now != _DATE["second"]:
        _DATE["second"] = now
        _DATE["value"] = email.utils.formatdate(now, usegmt=True)
    return str(_DATE["value"])


def _head(request: IncomingRequest, response: Response, framing: str, keep_alive: bool) -> bytes:
    """Status line and headers, serialised once; header values that could split the response
    (CR or LF inside) are dropped."""
    headers = response.headers
    status = response.status
    reason = response.reason
    start = _STATUS_LINES.get(status)
    if reason is not None and (start is None or reason != _REASONS[status]):
        if "\r" in reason or "\n" in reason:  # a stage's phrase must not split the response
            reason = None
        start = f"HTTP/1.1 {status} {reason or _REASONS.get(status, 'Unknown')}\r\n"
    elif start is None:
        start = f"HTTP/1.1 {status} Unknown\r\n"
    fields = "\r\n".join(map(": ".join, headers.items()))
    breaks = len(headers) - 1  # the separators: any other CR or LF came inside a name or value
    if fields.count("\n") != breaks or fields.count("\r") != breaks:
        fields = _safe_fields(headers)
    if fields:
        fields += "\r\n"
    if DATE not in headers:
        fields += f"Date: {_date()}\r\n"
    if framing == "chunked":
        fields += "Transfer-Encoding: chunked\r\n"
    if not keep_alive:
        fields += "Connection: close\r\n"
    elif request.version < HttpVersion11:
        fields += "Connection: keep-alive\r\n"
    return (start + fields + "\r\n").encode("latin-1", "replace")


def _safe_fields(headers: CIMultiDict[str]) -> str:
    """The header block without the fields whose name or value holds a line break."""
    lines = []
    for name, value in headers.items():
        if "\n" in value or "\r" in value or "\n" in name or "\r" in name:
            log.warning("dropping response header %r: it contains a line break", name)
            continue
        lines.append(f"{name}: {value}")
    return "\r\n".join(lines)


_REASONS = {status.value: status.phrase for status in HTTPStatus}
_STATUS_LINES = {status: f"HTTP/1.1 {status} {phrase}\r\n" for status, phrase in _REASONS.items()}


def _should_compress(
    request: IncomingRequest, response: Response, config: CompressionConfig
) -> bool:
    headers = response.headers
    if response.status in _NO_BODY_STATUSES or response.status < 200 or request.method == "HEAD":
        return False
    if "Content-Encoding" in headers or "gzip" not in request.headers.get("Accept-Encoding", ""):
        return False
    if "no-transform" in headers.get("Cache-Control", ""):
        return False
    content_type = headers.get("Content-Type", "")
    if not any(content_type.startswith(prefix) for prefix in config.content_types):
        return False
    length = (
        len(response.body) if isinstance(response.body, bytes) else headers.get("Content-Length")
    )
    return length is None or int(length) >= config.min_size


def _gzip(response: Response, config: CompressionConfig) -> bytes | AsyncIterator[bytes]:
    headers: CIMultiDict[str] = response.headers
    headers.popall("Content-Length", None)
    headers["Content-Encoding"] = "gzip"
    vary = headers.get("Vary")
    if not vary:
        headers["Vary"] = "Accept-Encoding"
    elif "accept-encoding" not in vary.lower() and vary.strip() != "*":
        headers["Vary"] = f"{vary}, Accept-Encoding"
    etag = headers.get("ETag")
    if etag and not etag.startswith("W/"):
        headers["ETag"] = f"W/{etag}"
    body = response.body
    if isinstance(body, bytes):
        compressor = zlib.compressobj(config.level, zlib.DEFLATED, 31)
        return compressor.compress(body) + compressor.flush()
    return gzip_stream(body, config.level)
