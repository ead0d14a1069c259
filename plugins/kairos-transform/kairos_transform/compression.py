"""Content codings (gzip, deflate, br when `brotli` is installed): bounded decode, re-encode."""

from __future__ import annotations

import importlib
import zlib
from collections.abc import Callable
from types import ModuleType


def _optional_brotli() -> ModuleType | None:
    try:
        return importlib.import_module("brotli")
    except ImportError:  # optional: `pip install kairos-transform[brotli]`
        return None


brotli = _optional_brotli()

LEVEL = 6
BROTLI_QUALITY = 5


class BodyError(Exception):
    """A body the transformer cannot edit: `invalid`, `oversize` or `encoding`."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def _zlib_decode(data: bytes, wbits: int, limit: int, name: str) -> bytes:
    out: list[bytes] = []
    size = 0
    while True:
        decoder = zlib.decompressobj(wbits)
        try:
            chunk = decoder.decompress(data, limit + 1 - size)
        except zlib.error as exc:
            raise BodyError("invalid", f"corrupt {name} data: {exc}") from None
        size += len(chunk)
        out.append(chunk)
        if size > limit or decoder.unconsumed_tail:
            raise BodyError(
                "oversize", f"larger than {limit} bytes once decoded (the transform limit)"
            )
        if not decoder.eof:
            raise BodyError("invalid", f"truncated {name} data")
        data = decoder.unused_data
        if not data or wbits != 31:  # gzip allows several members back to back
            if data:
                raise BodyError("invalid", f"trailing bytes after the {name} data")
            return b"".join(out)


def _gzip_decode(data: bytes, limit: int) -> bytes:
    return _zlib_decode(data, 31, limit, "gzip")


def _deflate_decode(data: bytes, limit: int) -> bytes:
    # `deflate` means zlib-wrapped (RFC 9110), but some servers send raw deflate.
    try:
        return _zlib_decode(data, 15, limit, "deflate")
    except BodyError as exc:
        if exc.kind != "invalid":
            raise
        try:
            return _zlib_decode(data, -15, limit, "deflate")
        except BodyError as raw_exc:
            raise (raw_exc if raw_exc.kind == "oversize" else exc) from None


def _brotli_decode(data: bytes, limit: int) -> bytes:
    assert brotli is not None
    decoder = brotli.Decompressor()
    try:
        out: bytes = decoder.process(data, output_buffer_limit=limit + 1)
    except brotli.error as exc:
        raise BodyError("invalid", f"corrupt br data: {exc}") from None
    if len(out) > limit:
        raise BodyError("oversize", f"larger than {limit} bytes once decoded (the transform limit)")
    if not decoder.is_finished():
        raise BodyError("invalid", "truncated br data")
    return out


def _gzip_encode(data: bytes) -> bytes:
    encoder = zlib.compressobj(LEVEL, zlib.DEFLATED, 31)
    return encoder.compress(data) + encoder.flush()


def _deflate_encode(data: bytes) -> bytes:
    return zlib.compress(data, LEVEL)


def _brotli_encode(data: bytes) -> bytes:
    assert brotli is not None
    encoded: bytes = brotli.compress(data, quality=BROTLI_QUALITY)
    return encoded


Decoder = Callable[[bytes, int], bytes]
Encoder = Callable[[bytes], bytes]
CODINGS: dict[str, tuple[Decoder, Encoder]] = {
    "gzip": (_gzip_decode, _gzip_encode),
    "x-gzip": (_gzip_decode, _gzip_encode),
    "deflate": (_deflate_decode, _deflate_encode),
}
if brotli is not None:
    CODINGS["br"] = (_brotli_decode, _brotli_encode)


def parse_codings(header: str | None) -> tuple[str, ...]:
    """The codings of a Content-Encoding value, in the order they were applied."""
    if not header:
        return ()
    codings = tuple(
        c for c in (token.strip().lower() for token in header.split(",")) if c and c != "identity"
    )
    for coding in codings:
        if coding not in CODINGS:
            supported = ", ".join(sorted(CODINGS))
            raise BodyError(
                "encoding", f"content coding {coding!r} is not supported (supported: {supported})"
            )
    return codings


def decode(data: bytes, codings: tuple[str, ...], limit: int) -> bytes:
    """Undo `codings` (last applied first); the result may hold at most `limit` bytes."""
    for coding in reversed(codings):
        data = CODINGS[coding][0](data, limit)
    return data


def encode(data: bytes, codings: tuple[str, ...]) -> bytes:
    """Apply `codings` in order."""
    for coding in codings:
        data = CODINGS[coding][1](data)
    return data
