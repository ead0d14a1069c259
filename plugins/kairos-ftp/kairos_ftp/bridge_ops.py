"""What the bridge does per method: GET/HEAD (file, range or listing), PUT and DELETE."""

from __future__ import annotations

import asyncio
import contextlib
import mimetypes
import posixpath
import secrets
from collections.abc import AsyncIterator
from email.utils import format_datetime
from typing import TYPE_CHECKING

from multidict import CIMultiDict

from kairos_core import BROKEN, TIMEOUT, RequestBodyTooLarge, RequestContext, Response
from kairos_ftp.bridge_errors import BridgeError, status_for
from kairos_ftp.channel import ChannelClosed, ProtocolError
from kairos_ftp.client import DataStream, Facts, FtpClient, FtpError

if TYPE_CHECKING:
    from kairos_ftp.bridge import FtpBridge, Lease


def _failure(lease: Lease, exc: BaseException) -> BridgeError:
    """Report a failed request to the pool and turn it into the HTTP error to answer."""
    if isinstance(exc, BridgeError):
        lease.done(exc.status)
        return exc
    if isinstance(exc, FtpError):
        error = status_for(exc)
        lease.done(error.status)
        return error
    if isinstance(exc, TimeoutError):
        lease.done(TIMEOUT)
        return BridgeError(504, "gateway_timeout", "the FTP server did not answer in time")
    lease.done(BROKEN)
    return BridgeError(502, "bad_gateway", f"the FTP connection failed: {exc}")


_EXPECTED = (BridgeError, FtpError, OSError, ChannelClosed, ProtocolError)


async def get(bridge: FtpBridge, ctx: RequestContext, path: str, wants_dir: bool) -> Response:
    """A file (whole or a byte range), or a directory's JSON listing; HEAD gives the headers."""
    lease = await bridge.lease(ctx)
    head = ctx.method == "HEAD"
    try:
        facts = await lease.client.stat(path)
        if facts is None:
            raise BridgeError(404, "not_found", "no such file or directory")
        if facts.is_dir:
            return await _listing(bridge, lease, ctx, path, head)
        if wants_dir:
            raise BridgeError(404, "not_found", "not a directory")
        return await _file(bridge, lease, ctx, path, facts, head)
    except _EXPECTED as exc:
        raise _failure(lease, exc) from None


async def _listing(
    bridge: FtpBridge, lease: Lease, ctx: RequestContext, path: str, head: bool
) -> Response:
    if not bridge.settings.listings:
        raise BridgeError(403, "forbidden", "directory listings are disabled")
    if head:
        lease.done(200)
        return Response(200, CIMultiDict({"Content-Type": "application/json"}))
    entries = await lease.client.listing(path)
    lease.done(200)
    items = [_entry(e) for e in sorted(entries, key=lambda e: e.name)]
    return Response.json({"path": ctx.path, "entries": items})


def _entry(facts: Facts) -> dict[str, object]:
    kind = "dir" if facts.is_dir else facts.type or None
    entry: dict[str, object] = {"name": facts.name, "type": kind}
    if facts.size is not None and not facts.is_dir:
        entry["size"] = facts.size
    if facts.modified is not None:
        entry["modified"] = facts.modified.isoformat().replace("+00:00", "Z")
    return entry


def _file_headers(path: str, facts: Facts) -> CIMultiDict[str]:
    headers: CIMultiDict[str] = CIMultiDict()
    content_type, _ = mimetypes.guess_type(posixpath.basename(path))
    headers["Content-Type"] = content_type or "application/octet-stream"
    headers["Accept-Ranges"] = "bytes"
    if facts.modified is not None:
        headers["Last-Modified"] = format_datetime(facts.modified, usegmt=True)
        if facts.size is not None:
            headers["ETag"] = f'"{facts.size:x}-{int(facts.modified.timestamp()):x}"'
    return headers


def parse_range(value: str | None, size: int | None) -> tuple[int, int] | None:
    """The single byte range asked for, as (first, last); None for the whole file.

    Raises BridgeError(416) when the range lies outside the file.
    """
    if not value or size is None or not value.startswith("bytes=") or "," in value:
        return None  # absent, multi-range or unknown size: send the whole file
    first_text, dash, last_text = value[6:].strip().partition("-")
    if (
        not dash
        or not (first_text.isdigit() or first_text == "")
        or not (last_text.isdigit() or last_text == "")
    ):
        return None
    if first_text == "":
        if not last_text or int(last_text) == 0:
            raise _unsatisfiable(size)
        return max(0, size - int(last_text)), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if first >= size or last < first:
        raise _unsatisfiable(size)
    return first, min(last, size - 1)


def _unsatisfiable(size: int) -> BridgeError:
    return BridgeError(
        416,
        "range_not_satisfiable",
        f"the file has {size} bytes",
        {"Content-Range": f"bytes */{size}"},
    )


async def _file(
    bridge: FtpBridge,
    lease: Lease,
    ctx: RequestContext,
    path: str,
    facts: Facts,
    head: bool,
) -> Response:
    headers = _file_headers(path, facts)
    size = facts.size
    wanted = parse_range(ctx.request.headers.get("Range"), size)
    if head:
        if size is not None:
            headers["Content-Length"] = str(size)
        lease.done(200)
        return Response(200, headers)
    first, last = wanted or (0, (size - 1) if size is not None else -1)
    length = last - first + 1 if size is not None else None
    data = await lease.client.open_data(f"RETR {path}", rest=first)
    status = 206 if wanted else 200
    if wanted:
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    if length is not None:
        headers["Content-Length"] = str(length)
    download = Download(bridge, lease, data, length, status, whole=not wanted)
    response = Response(status, headers, download.chunks())
    response.on_close(download.close)
    return response


class Download:
    """Streams one RETR to the HTTP client, reading at most `chunk_size` at a time."""

    def __init__(
        self,
        bridge: FtpBridge,
        lease: Lease,
        data: DataStream,
        length: int | None,
        status: int,
        whole: bool,
    ) -> None:
        self.whole = whole
        """The whole file was asked for: wait for the server's EOF (a clean end)."""
        self.bridge = bridge
        self.lease = lease
        self.data = data
        self.length = length
        self.status = status
        self.complete = False
        self.closed = False

    async def chunks(self) -> AsyncIterator[bytes]:
        """The file's bytes; an error here cuts the HTTP response short."""
        settings = self.bridge.settings
        remaining = self.length
        reader = self.data.reader
        size = int(settings.chunk_size)
        while remaining is None or remaining > 0:
            want = size if remaining is None else min(size, remaining)
            async with asyncio.timeout(settings.data_timeout):
                chunk = await reader.read(want)
            if not chunk:
                break
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk
        if remaining:
            raise ConnectionError(f"the FTP transfer ended {remaining} bytes early")
        if self.whole and not reader.at_eof():
            async with asyncio.timeout(settings.data_timeout):
                await reader.read(1)  # EOF: the file did not grow meanwhile
        self.complete = True
        await self.close()

    async def close(self) -> None:
        """Release the data connection and the backend (once, however the response ended)."""
        if self.closed:
            return
        self.closed = True
        at_eof = self.complete and self.data.reader.at_eof()
        if at_eof:
            await self.data.close()
        else:
            self.data.abort()  # a range that ended early, or a client that left
        self.lease.done(self.status if self.complete else BROKEN, read_final=at_eof)


async def put(bridge: FtpBridge, ctx: RequestContext, path: str, wants_dir: bool) -> Response:
    """Upload the request body (streamed), or create a directory for a path ending in `/`."""
    lease = await bridge.lease(ctx)
    try:
        facts = await lease.client.stat(path)
        if wants_dir:
            return await _make_dir(lease, path, facts)
        if facts is not None and facts.is_dir:
            raise BridgeError(409, "conflict", "a directory has that name")
        target = path
        if bridge.settings.atomic_uploads:
            folder, name = posixpath.split(path)
            target = posixpath.join(folder, f".{name}.kairos-{secrets.token_hex(4)}.part")
        size = await _store(bridge, lease, ctx, target)
        if target != path:
            await _rename_into_place(lease, target, path, replace=facts is not None)
        status = 204 if facts is not None else 201
        lease.done(status)
        if status == 204:
            return Response(204)
        return Response.json({"path": ctx.path, "size": size}, 201)
    except RequestBodyTooLarge:
        lease.done(413)
        raise
    except _EXPECTED as exc:
        raise _failure(lease, exc) from None


async def _make_dir(lease: Lease, path: str, facts: Facts | None) -> Response:
    if facts is not None:
        if not facts.is_dir:
            raise BridgeError(409, "conflict", "a file has that name")
        lease.done(204)
        return Response(204)
    await lease.client.expect(f"MKD {path}", 257)
    lease.done(201)
    return Response(201)


async def _store(bridge: FtpBridge, lease: Lease, ctx: RequestContext, target: str) -> int:
    client = lease.client
    data = await client.open_data(f"STOR {target}")
    written = 0
    try:
        body = ctx.body_for_upstream()
        chunks: AsyncIterator[bytes] | None = None
        if isinstance(body, bytes):
            chunks = _once(body)
        elif body is not None:
            chunks = body
        if chunks is not None:
            async for chunk in chunks:
                data.writer.write(chunk)
                written += len(chunk)
                async with asyncio.timeout(bridge.settings.data_timeout):
                    await data.writer.drain()
    except BaseException:
        data.abort()
        await _discard(client, target)
        raise
    await data.close(bridge.settings.data_timeout)
    reply = await client.final_reply()
    if reply.code not in (226, 250):
        await _discard(client, target)
        raise FtpError("STOR", reply)
    return written


async def _once(body: bytes) -> AsyncIterator[bytes]:
    yield body


async def _discard(client: FtpClient, target: str) -> None:
    """Best effort: read the aborted transfer's reply and delete the partial file."""
    try:
        await client.final_reply()
        await client.request(f"DELE {target}")
    except (OSError, ChannelClosed, ProtocolError):
        pass


async def _rename_into_place(lease: Lease, source: str, target: str, replace: bool) -> None:
    client = lease.client
    try:
        await client.expect(f"RNFR {source}", 350)
        reply = await client.request(f"RNTO {target}")
        if reply.code != 250 and replace:  # some servers will not rename over a file
            await client.expect(f"DELE {target}", 250)
            await client.expect(f"RNFR {source}", 350)
            reply = await client.request(f"RNTO {target}")
        if reply.code != 250:
            raise FtpError("RNTO", reply)
    except BaseException:
        await _discard_quietly(lease, source)
        raise


async def _discard_quietly(lease: Lease, source: str) -> None:
    with contextlib.suppress(OSError, ChannelClosed, ProtocolError):
        await lease.client.request(f"DELE {source}")


async def delete(bridge: FtpBridge, ctx: RequestContext, path: str, wants_dir: bool) -> Response:
    """Remove a file (DELE) or an empty directory (RMD)."""
    lease = await bridge.lease(ctx)
    try:
        facts = await lease.client.stat(path)
        if facts is None:
            raise BridgeError(404, "not_found", "no such file or directory")
        if facts.is_dir:
            await lease.client.expect(f"RMD {path}", 250)
        else:
            await lease.client.expect(f"DELE {path}", 250)
        lease.done(204)
        return Response(204)
    except _EXPECTED as exc:
        raise _failure(lease, exc) from None
