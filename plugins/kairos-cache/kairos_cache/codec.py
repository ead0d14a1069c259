"""Bytes for stored entries in shared stores (Redis): a JSON head, the body, optional zlib."""

from __future__ import annotations

import json
import struct
import zlib

from kairos_cache.entry import CachedResponse, VaryMarker

MAGIC = b"KC2"
_COMPRESSED = 1
_LENGTH = struct.Struct(">I")


class CorruptEntry(ValueError):
    """Stored bytes that are not a cache entry of this format."""


def encode(
    item: CachedResponse | VaryMarker, compress_min: int | None = None, level: int = 6
) -> bytes:
    """Serialize `item`; zlib-compress when `compress_min` is set and the payload reaches it."""
    if isinstance(item, VaryMarker):
        head: list[object] = [list(item.names)]
        body = b""
    else:
        head = [
            item.status,
            [part for pair in item.headers for part in pair],
            item.response_time,
            item.initial_age,
            item.freshness,
            item.stale_while_revalidate,
            item.stale_if_error,
            item.must_revalidate,
            item.etag,
            item.last_modified,
            list(item.vary),
            item.storage_ttl,
        ]
        body = item.body
    raw_head = json.dumps(head, separators=(",", ":")).encode()
    payload = _LENGTH.pack(len(raw_head)) + raw_head + body
    if compress_min is not None and len(payload) >= compress_min:
        return MAGIC + bytes([_COMPRESSED]) + zlib.compress(payload, level)
    return MAGIC + b"\x00" + payload


def decode(data: bytes) -> CachedResponse | VaryMarker:
    """The entry `encode` produced; raise CorruptEntry for anything else."""
    if len(data) < 4 or data[:3] != MAGIC:
        raise CorruptEntry("not a kairos cache entry")
    payload = data[4:]
    try:
        if data[3] & _COMPRESSED:
            payload = zlib.decompress(payload)
        (size,) = _LENGTH.unpack_from(payload)
        head = json.loads(payload[4 : 4 + size])
        if len(head) == 1:
            return VaryMarker(tuple(head[0]))
        status, flat, rt, ia, fresh, swr, sie, mr, etag, lm, vary, ttl = head
        return CachedResponse(
            int(status),
            tuple(zip(flat[::2], flat[1::2], strict=True)),
            payload[4 + size :],
            float(rt),
            float(ia),
            float(fresh),
            float(swr),
            float(sie),
            bool(mr),
            etag,
            lm,
            tuple(vary),
            float(ttl),
        )
    except (zlib.error, struct.error, ValueError, KeyError, TypeError) as exc:
        raise CorruptEntry(f"unreadable cache entry: {exc}") from exc
