"""Write a chain's Response to the client: bytes at once, streams chunk by chunk, gzip if asked."""

from __future__ import annotations

import logging
import zlib
from collections.abc import AsyncIterator

from aiohttp import web
from multidict import CIMultiDict

from kairos_core.config.models import CompressionConfig
from kairos_core.response import Response

log = logging.getLogger("kairos.server")

_NO_BODY_STATUSES = frozenset({204, 304})


class ClientGone(Exception):
    """The client closed the connection while the response was being sent."""


async def send_response(
    request: web.BaseRequest,
    response: Response,
    compression: CompressionConfig | None,
) -> tuple[web.StreamResponse, int]:
    """Send `response` (returns it and the body bytes sent); a mid-body upstream failure cuts
    the client connection short."""
    if response.sent is not None:
        await response.close()
        return response.sent, 0
    headers = response.headers
    body = response.body
    if compression is not None and _should_compress(request, response, compression):
        response.body = body = _gzip(response, compression)
    if isinstance(body, bytes):
        if not (request.method == "HEAD" and not body):
            headers.popall("Content-Length", None)
        whole = web.Response(
            status=response.status, reason=response.reason, headers=headers, body=body or None
        )
        await response.close()
        return whole, 0 if request.method == "HEAD" else len(body)
    sent = 0
    out = web.StreamResponse(status=response.status, reason=response.reason, headers=headers)
    try:
        await out.prepare(request)
        async for chunk in body:
            sent += len(chunk)
            await out.write(chunk)
    except (ConnectionError, ClientGone):
        await response.close()
        raise
    except Exception as exc:
        await response.close()
        log.warning("upstream body failed mid-response (%s): closing the client connection", exc)
        transport = request.transport
        if transport is not None:
            transport.close()
        return out, sent
    await response.close()
    await out.write_eof()
    return out, sent


def _should_compress(
    request: web.BaseRequest, response: Response, config: CompressionConfig
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
    return _gzip_stream(body, config.level)


async def _gzip_stream(body: AsyncIterator[bytes], level: int) -> AsyncIterator[bytes]:
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    try:
        async for chunk in body:
            data = compressor.compress(chunk) + compressor.flush(zlib.Z_SYNC_FLUSH)
            if data:
                yield data
        yield compressor.flush()
    finally:
        aclose = getattr(body, "aclose", None)
        if aclose is not None:
            await aclose()
