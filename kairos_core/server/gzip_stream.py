"""A streamed body gzipped chunk by chunk (kept interpreted: mypyc lacks async generators,
and `writer.py`, which calls it, is compiled)."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator


async def gzip_stream(body: AsyncIterator[bytes], level: int) -> AsyncIterator[bytes]:
    """Gzip a streamed body, flushing after each chunk so nothing waits for the next one."""
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
