"""`LeanUpstreamClient`: the UpstreamClient seam on asyncio.Protocol connections and httptools."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

from multidict import CIMultiDict

from kairos_core.config.models import ResolverConfig, Timeouts, UpstreamConfig
from kairos_core.upstream.client import UpstreamError, UpstreamResponse
from kairos_core.upstream.lean.body import BufferedBody, StreamedBody
from kairos_core.upstream.lean.connection import UpstreamConnection
from kairos_core.upstream.lean.pool import BackendConnections
from kairos_core.upstream.lean.request import IDEMPOTENT_METHODS, declared_length, serialize_head
from kairos_core.upstream.pool import Backend
from kairos_core.upstream.resolver import TTLResolver

_JOIN_BODY_UP_TO = 64 * 1024
"""A bytes body up to this size goes out in the same write as the head."""
_MAX_CLOSED_PICKS = 8


class LeanUpstreamClient:
    """Pooled keep-alive HTTP/1.1 to the backends of one pool (one connection pool per backend)."""

    def __init__(
        self,
        config: UpstreamConfig,
        resolver_config: ResolverConfig,
        ssl_context: ssl.SSLContext | None,
        server_name: str | None = None,
    ) -> None:
        self._config = config
        self._resolver_config = resolver_config
        self._ssl = ssl_context
        self._server_name = server_name
        self._resolver: TTLResolver | None = None
        self._pools: dict[Backend, BackendConnections] = {}
        self._closed = False

    def connections(self, backend: Backend) -> BackendConnections:
        """The connection pool of `backend` (made on first use)."""
        pool = self._pools.get(backend)
        if pool is None:
            if self._closed:
                raise UpstreamError("connect", f"the pool of {backend.name} is closed", sent=False)
            if self._resolver is None:
                self._resolver = TTLResolver(self._resolver_config, self._config.dns_ttl)
            pool = self._pools[backend] = BackendConnections(
                backend,
                self._config.max_connections,
                self._config.keepalive_timeout,
                self._ssl,
                self._server_name,
                self._resolver,
            )
        return pool

    def idle_connections(self) -> int:
        """Idle keep-alive connections held across every backend."""
        return sum(pool.idle_count() for pool in self._pools.values())

    async def send(
        self,
        backend: Backend,
        method: str,
        target: str,
        headers: CIMultiDict[str],
        body: bytes | AsyncIterator[bytes] | None,
        timeouts: Timeouts,
    ) -> UpstreamResponse:
        """Send one request and return once the response head has arrived."""
        pool = self._pools.get(backend) or self.connections(backend)
        stream: AsyncIterator[bytes] | None = None
        if isinstance(body, bytes):
            head, chunked = serialize_head(
                method, target, headers, backend.host_header, len(body) if body else None, False
            )
            payload = head + body if len(body) <= _JOIN_BODY_UP_TO else head
            tail = body if len(body) > _JOIN_BODY_UP_TO else b""
        else:
            stream = body
            head, chunked = serialize_head(
                method, target, headers, backend.host_header, None, body is not None
            )
            payload, tail = head, b""
        may_replay = method in IDEMPOTENT_METHODS
        fresh = False
        closed_picks = 0
        while True:
            conn = (None if fresh else pool.idle_connection()) or await pool.acquire(
                timeouts.connect, fresh
            )
            reused = conn.reused
            if not conn.begin(method == "HEAD", timeouts.read, timeouts.total):
                pool.release(conn, False)  # closed before anything was written: not sent
                closed_picks += 1
                if closed_picks >= _MAX_CLOSED_PICKS:
                    fresh = True
                continue
            pulled = False
            try:
                conn.write(payload)
                if tail:
                    conn.write(tail)
                if stream is not None:
                    pulled = await _send_stream(conn, stream, chunked, headers, backend)
                while not conn.head_done and conn.error is None:
                    await conn.wait()
            except BaseException:
                pool.release(conn, False)
                raise
            error = conn.error
            if error is None:
                return _response(conn, pool)
            pool.release(conn, False)  # an error known before the head is returned: a 502/504
            stale = reused and not conn.got_bytes and error.kind == "reset"
            if stale and may_replay and not pulled and not fresh:
                fresh = True  # RFC 9112 9.3.1: retry once on a new connection
                continue
            raise error

    async def close(self) -> None:
        """Close every connection."""
        self._closed = True
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
        if self._resolver is not None:
            await self._resolver.close()


async def _send_stream(
    conn: UpstreamConnection,
    stream: AsyncIterator[bytes],
    chunked: bool,
    headers: CIMultiDict[str],
    backend: Backend,
) -> bool:
    """Stream a request body with flow control; True once any of it was pulled from `stream`."""
    expected = None if chunked else declared_length(headers)
    sent = 0
    pulled = False
    try:
        async for chunk in stream:
            pulled = True
            if not conn.writable:
                break  # the backend answered (or failed) early: stop sending
            if not chunk:
                continue
            sent += len(chunk)
            if expected is not None and sent > expected:
                conn.fail("reset", f"request body to {backend.name} exceeds its Content-Length")
                return pulled
            conn.write_chunk(chunk, chunked)
            if conn.write_paused:
                await conn.drain()
        else:
            if conn.writable:
                if chunked:
                    conn.write(b"0\r\n\r\n")
                elif expected is not None and sent != expected:
                    conn.fail(
                        "reset",
                        f"request body to {backend.name} is shorter than its Content-Length",
                    )
            return pulled
    except Exception as exc:
        conn.abort()
        raise UpstreamError(
            "reset", f"the request body could not be sent to {backend.name}: {exc}", sent=True
        ) from exc
    conn.keep_alive = False  # the request was cut short: the connection cannot be reused
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()
    return pulled


def _response(conn: UpstreamConnection, pool: BackendConnections) -> UpstreamResponse:
    reason = conn.reason.decode("latin-1") or None
    if conn.complete:
        chunk = conn.take_chunk() if conn.chunks else b""
        status, headers = conn.status, conn.end_to_end_headers()
        pool.release(conn, conn.reusable())
        return UpstreamResponse(
            status, reason, headers, BufferedBody(chunk), end_to_end=True, whole=chunk
        )
    return UpstreamResponse(
        conn.status, reason, conn.end_to_end_headers(), StreamedBody(conn, pool), end_to_end=True
    )
