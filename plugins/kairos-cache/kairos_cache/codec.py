"""Bytes for stored entries in shared stores (Redis): a JSON head, the body, optional zlib."""

from __future__ import annotations

import json
import struct
import zlib

from kairos_cache.entry import CachedResponse, VaryMarker

MAGIC = b"KC1"
_COMPRESSED = 1
_LENGTH = struct.Struct(">I")


class CorruptEntry(ValueError):
    """Stored bytes that are not a cache entry of this format."""


def encode(
    item: CachedResponse | VaryMarker, compress_min: int | None = None, level: int = 6
) -> bytes:
    """Serialize `item`; zlib-compress when `compress_min` is set and the payload reaches it."""
    if isinstance(item, VaryMarker):
        head: dict[str, object] = {"m": list(item.names)}
        body = b""
    else:
        head = {
            "s": item.status,
            "h": [list(pair) for pair in item.headers],
            "rt": item.response_time,
            "ia": item.initial_age,
            "f": item.freshness,
            "swr": item.stale_while_revalidate,
            "sie": item.stale_if_error,
            "mr": item.must_revalidate,
            "e": item.etag,
            "lm": item.last_modified,
            "v": list(item.vary),
            "t": item.storage_ttl,
        }
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
        body = payload[4 + size :]
        if "m" in head:
            return VaryMarker(tuple(head["m"]))
        return CachedResponse(
            status=int(head["s"]),
            headers=tuple((str(n), str(v)) for n, v in head["h"]),
            body=bytes(body),
            response_time=float(head["rt"]),
            initial_age=float(head["ia"]),
            freshness=float(head["f"]),
            stale_while_revalidate=float(head["swr"]),
            stale_if_error=float(head["sie"]),
            must_revalidate=bool(head["mr"]),
            etag=head["e"],
            last_modified=head["lm"],
            vary=tuple(head["v"]),
            storage_ttl=float(head["t"]),
        )
    except (zlib.error, struct.error, ValueError, KeyError, TypeError) as exc:
        raise CorruptEntry(f"unreadable cache entry: {exc}") from exc
