"""Response bodies as async iterators that hand the connection back when they end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kairos_core.upstream.lean.connection import UpstreamConnection
    from kairos_core.upstream.lean.pool import BackendConnections


class StreamedBody(AsyncIterator[bytes]):
    """Yields body chunks as they arrive; reuses the connection only after a complete read."""

    __slots__ = ("_conn", "_pool")

    def __init__(self, conn: UpstreamConnection, pool: BackendConnections) -> None:
        self._conn: UpstreamConnection | None = conn
        self._pool = pool

    def __aiter__(self) -> StreamedBody:
        return self

    async def __anext__(self) -> bytes:
        conn = self._conn
        if conn is None:
            raise StopAsyncIteration
        while True:
            if conn.chunks:
                return conn.take_chunk()
            if conn.complete:
                self._conn = None
                self._pool.release(conn, conn.reusable())
                raise StopAsyncIteration
            error = conn.error
            if error is not None:
                self._conn = None
                self._pool.release(conn, False)
                raise error
            try:
                await conn.wait()
            except BaseException:
                self._conn = None
                self._pool.release(conn, False)
                raise

    async def aclose(self) -> None:
        """Abandon the body: a half-read connection is closed, never reused."""
        conn = self._conn
        if conn is not None:
            self._conn = None
            conn.chunks.clear()
            self._pool.release(conn, conn.reusable())  # reused only if it was read to the end


class BufferedBody(AsyncIterator[bytes]):
    """A body that had fully arrived with the head (its connection is already back)."""

    __slots__ = ("_chunk",)

    def __init__(self, chunk: bytes) -> None:
        self._chunk = chunk

    def __aiter__(self) -> BufferedBody:
        return self

    async def __anext__(self) -> bytes:
        chunk = self._chunk
        if not chunk:
            raise StopAsyncIteration
        self._chunk = b""
        return chunk

    async def aclose(self) -> None:
        """Nothing to release."""
        self._chunk = b""
