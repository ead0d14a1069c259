"""Keep-alive connections to one backend, keyed by resolved address, with a limit and a queue.

Idle connections are stacks per (address, port, TLS): the most recently used one is reused
first, so surplus connections at the bottom age out. A backend host name is resolved through
the TTL-honouring resolver; when its answer changes, idle connections to addresses no longer
in it are closed instead of being reused forever. With `max_connections` set, requests beyond
it wait in FIFO order for a connection (or a free slot) at most the connect timeout.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections import deque
from typing import Any

from kairos_core.upstream.client import UpstreamError
from kairos_core.upstream.lean.connection import IDLE, ConnectionKey, UpstreamConnection
from kairos_core.upstream.pool import Backend
from kairos_core.upstream.resolver import TTLResolver

_TIMED_OUT: Any = object()


class BackendConnections:
    """The connections of one backend: idle stacks, the open count and the wait queue."""

    def __init__(
        self,
        backend: Backend,
        max_connections: int,
        keepalive_timeout: float,
        ssl_context: ssl.SSLContext | None,
        server_name: str | None,
        resolver: TTLResolver | None,
    ) -> None:
        self.backend = backend
        self._limit = max_connections
        self._keepalive = keepalive_timeout
        tls = backend.scheme == "https"
        self._tls = tls
        self._ssl: ssl.SSLContext | bool | None = (ssl_context or True) if tls else None
        self._server_name = (server_name or backend.host) if tls else None
        self._resolver = resolver
        self._answer: object = None
        self._keys: tuple[ConnectionKey, ...] = ()
        if _is_ip(backend.host):
            self._keys = ((backend.host, backend.port, tls),)
            self._resolver = None
        self._idle: dict[ConnectionKey, list[UpstreamConnection]] = {}
        self._waiters: deque[asyncio.Future[Any]] = deque()
        self._sweeper: asyncio.TimerHandle | None = None
        self._all: set[UpstreamConnection] = set()
        self.open = 0
        """Connections open or being opened (idle ones included)."""
        self.closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        """The running loop, looked up once (on CPython 3.11 every lookup costs a getpid call)."""

    async def acquire(self, connect_timeout: float, fresh: bool = False) -> UpstreamConnection:
        """An idle connection to a current address, or a new one (waiting if at the limit)."""
        if self.closed:
            raise UpstreamError("connect", f"the pool of {self.backend.name} is closed", sent=False)
        keys = self._keys if self._resolver is None else await self._resolve()
        loop = asyncio.get_running_loop()
        if not fresh:
            found = self._pop_idle(keys, loop.time())
            if found is not None:
                return found
        if self._limit and self.open >= self._limit:
            granted = await self._wait(loop, connect_timeout)
            if granted is not None:
                if granted.key in keys and not fresh:
                    return granted
                granted.abort()  # stale address or a fresh one is needed: keep the slot only
        else:
            self.open += 1
        try:
            return await self._connect(loop, keys, connect_timeout)
        except BaseException:
            self._slot_freed()
            raise

    def idle_connection(self) -> UpstreamConnection | None:
        """An idle connection to use at once (None: `acquire` resolves, connects or waits)."""
        if self.closed or self._resolver is not None:
            return None
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return self._pop_idle(self._keys, loop.time())

    def _pop_idle(self, keys: tuple[ConnectionKey, ...], now: float) -> UpstreamConnection | None:
        idle = self._idle
        for key in keys:
            stack = idle.get(key)
            while stack:
                conn = stack.pop()
                if conn.state == IDLE and conn.idle_deadline > now:
                    return conn
                self._drop_idle(conn)
        return None

    def release(self, conn: UpstreamConnection, reusable: bool) -> None:
        """Take a connection back: to the first waiter or the idle stack, or close it."""
        if not reusable or self.closed:
            conn.abort()
            self._slot_freed()
            return
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        conn.state = IDLE
        conn.idle_deadline = conn.loop.time() + self._keepalive
        stack = self._idle.get(conn.key)
        if stack is None:
            stack = self._idle[conn.key] = []
        stack.append(conn)
        if self._sweeper is None:
            self._sweeper = conn.loop.call_at(conn.idle_deadline, self._sweep)

    def idle_count(self) -> int:
        """Idle keep-alive connections held now."""
        return sum(len(stack) for stack in self._idle.values())

    def close(self) -> None:
        """Close every idle connection; busy ones close when their exchange ends."""
        self.closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        self._idle.clear()
        for conn in list(self._all):
            conn.abort()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    # -- internals -------------------------------------------------------------------------

    async def _resolve(self) -> tuple[ConnectionKey, ...]:
        assert self._resolver is not None
        backend = self.backend
        try:
            answer = await self._resolver.resolve(backend.host, backend.port, socket.AF_UNSPEC)
        except OSError as exc:
            raise UpstreamError(
                "connect", f"cannot connect to {backend.name}: {exc}", sent=False
            ) from exc
        if answer is not self._answer:
            keys = tuple(dict.fromkeys((r["host"], backend.port, self._tls) for r in answer))
            for key in list(self._idle):
                if key not in keys:
                    for conn in self._idle.pop(key):
                        self._drop_idle(conn)
            self._answer, self._keys = answer, keys
        return self._keys

    async def _wait(
        self, loop: asyncio.AbstractEventLoop, timeout: float
    ) -> UpstreamConnection | None:
        """Queue for a connection (returned) or a slot to open one (None)."""
        waiter: asyncio.Future[Any] = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_later(timeout, _expire, waiter)
        try:
            granted = await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._give_back(waiter.result())
            raise
        finally:
            timer.cancel()
        if granted is _TIMED_OUT:
            raise UpstreamError(
                "connect_timeout",
                f"no connection to {self.backend.name} became free within {timeout:g}s "
                f"(max_connections={self._limit})",
                sent=False,
            )
        if self.closed and granted is None:
            raise UpstreamError("connect", f"the pool of {self.backend.name} is closed", sent=False)
        return granted  # type: ignore[no-any-return]

    def _give_back(self, granted: UpstreamConnection | None) -> None:
        if granted is None:
            self._slot_freed()
        elif granted is not _TIMED_OUT:
            self.release(granted, True)

    def _slot_freed(self) -> None:
        """A connection closed: hand its slot to the first waiter, or count it gone."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.open -= 1

    async def _connect(
        self, loop: asyncio.AbstractEventLoop, keys: tuple[ConnectionKey, ...], timeout: float
    ) -> UpstreamConnection:
        backend = self.backend
        error: BaseException | None = None
        try:
            async with asyncio.timeout(timeout):  # only when a new connection is needed
                for key in keys:
                    conn = UpstreamConnection(loop, key, backend.name, self._lost)
                    try:
                        await loop.create_connection(
                            lambda conn=conn: conn,
                            key[0],
                            key[1],
                            ssl=self._ssl,
                            server_hostname=self._server_name,
                        )
                    except OSError as exc:  # ssl.SSLError and certificate errors included
                        error = exc
                        continue
                    self._all.add(conn)
                    return conn
        except TimeoutError as exc:
            raise UpstreamError(
                "connect_timeout", f"connecting to {backend.name} timed out", sent=False
            ) from exc
        raise UpstreamError(
            "connect", f"cannot connect to {backend.name}: {_reason(error)}", sent=False
        ) from error

    def _lost(self, conn: UpstreamConnection, idle: bool) -> None:
        """A connection closed; an idle one (the backend hung up) also leaves its stack."""
        self._all.discard(conn)
        if not idle:
            return
        stack = self._idle.get(conn.key)
        if stack is not None and conn in stack:
            stack.remove(conn)
            self._slot_freed()

    def _drop_idle(self, conn: UpstreamConnection) -> None:
        """Close a connection already taken off its stack (expired, dead or stale)."""
        if conn.state == IDLE:
            conn.close()
            self._slot_freed()

    def _sweep(self) -> None:
        """Close idle connections past their keep-alive time (oldest sit at the bottom)."""
        self._sweeper = None
        now = asyncio.get_running_loop().time()
        earliest = 0.0
        for key, stack in list(self._idle.items()):
            expired = 0
            while expired < len(stack) and stack[expired].idle_deadline <= now:
                expired += 1
            if expired:
                old = stack[:expired]
                del stack[:expired]
                for conn in old:
                    self._drop_idle(conn)
            if stack:
                due = stack[0].idle_deadline
                earliest = due if not earliest else min(earliest, due)
            else:
                del self._idle[key]
        if earliest:
            self._sweeper = asyncio.get_running_loop().call_at(earliest, self._sweep)


def _expire(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_result(_TIMED_OUT)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _reason(exc: BaseException | None) -> str:
    if exc is None:
        return "no address to connect to"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verification failed: {exc.verify_message}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
