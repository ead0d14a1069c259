"""Talking to upstream DNS servers: pooled UDP sockets with random IDs, TCP for long answers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import struct
from collections.abc import Awaitable, Callable

from kairos_core import Backend
from kairos_dns.wire import NOERROR, NXDOMAIN, QR, make_query

SOCKETS_PER_BACKEND = 4
RECEIVE_BUFFER = 1 << 21
"""Bytes of UDP receive buffer asked for (the kernel caps it at net.core.rmem_max): bursts of
answers must queue rather than be dropped, or timeouts would trip the circuit breaker."""
_U16 = struct.Struct("!H")


class UpstreamError(OSError):
    """The backend answered with something that is not an answer to our question."""


class _UpstreamSocket(asyncio.DatagramProtocol):
    """One connected UDP socket to a backend; matches answers to questions by ID and question."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: dict[int, tuple[asyncio.Future[bytes], bytes]] = {}
        """Query ID -> (future, question): lower-cased name followed by type and class."""
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) < 12:
            return
        waiting = self.pending.get(_U16.unpack_from(data)[0])
        if waiting is None:
            return
        future, question = waiting
        if not data[2] & (QR >> 8) or not same_question(data, question):
            return  # not the answer to our question (stale or spoofed): keep waiting
        if not future.done():
            future.set_result(data)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: the backend is not there, fail fast.
        self._fail_all(exc if isinstance(exc, OSError) else OSError(str(exc)))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail_all(ConnectionResetError("upstream socket closed"))

    def _fail_all(self, exc: OSError) -> None:
        for future, _question in list(self.pending.values()):
            if not future.done():
                future.set_exception(exc)


class UpstreamUDP:
    """A few UDP sockets to one backend (random source ports), opened on first use."""

    def __init__(self, host: str, port: int, sockets: int = SOCKETS_PER_BACKEND) -> None:
        self.host = host
        self.port = port
        self._slots: list[_UpstreamSocket | None] = [None] * sockets
        self._next = 0
        self._opening = asyncio.Lock()
        self._ids: list[int] = []

    def _random_id(self) -> int:
        """A query ID from the OS's CSPRNG, fetched 1024 at a time (one system call)."""
        if not self._ids:
            self._ids = list(struct.unpack("!1024H", os.urandom(2048)))
        return self._ids.pop()

    async def _open(self, index: int) -> _UpstreamSocket:
        async with self._opening:
            sock = self._slots[index]
            if sock is None or sock.closed:
                loop = asyncio.get_running_loop()
                transport, sock = await loop.create_datagram_endpoint(
                    _UpstreamSocket, remote_addr=(self.host, self.port)
                )
                grow_receive_buffer(transport.get_extra_info("socket"))
                self._slots[index] = sock
            return sock

    async def exchange(self, query: bytes, question: bytes, timeout: float) -> bytes:
        """Send `query` (its ID is replaced) and return the answer to `question` (lower-cased
        name, type, class); raises OSError or TimeoutError."""
        index = self._next = (self._next + 1) % len(self._slots)
        sock = self._slots[index]
        if sock is None or sock.closed:
            sock = await self._open(index)
        pending = sock.pending
        query_id = self._random_id()
        while query_id in pending:
            query_id = self._random_id()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes] = loop.create_future()
        pending[query_id] = (future, question)
        timer = loop.call_later(timeout, _expire, future)
        try:
            assert sock.transport is not None
            sock.transport.sendto(_U16.pack(query_id) + query[2:])
            return await future
        finally:
            timer.cancel()
            del pending[query_id]

    def close(self) -> None:
        """Close the sockets (queries still waiting fail)."""
        for sock in self._slots:
            if sock is not None and sock.transport is not None:
                sock.transport.close()
        self._slots = [None] * len(self._slots)


def _expire(future: asyncio.Future[bytes]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


async def tcp_exchange(
    host: str, port: int, query: bytes, question: bytes, timeout: float
) -> bytes:
    """One query over a fresh TCP connection (RFC 7766), e.g. after a truncated UDP answer."""
    query_id = secrets.randbits(16)
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            message = _U16.pack(query_id) + query[2:]
            writer.write(_U16.pack(len(message)) + message)
            await writer.drain()
            while True:
                length = _U16.unpack(await reader.readexactly(2))[0]
                answer = await reader.readexactly(length)
                if len(answer) < 12 or _U16.unpack_from(answer)[0] != query_id:
                    continue
                if not same_question(answer, question):
                    raise UpstreamError("TCP answer for another question")
                return answer
        except asyncio.IncompleteReadError:
            raise ConnectionResetError("upstream closed the TCP connection early") from None
        finally:
            writer.close()


def dns_probe(qname: bytes, qtype: int) -> Callable[[Backend], Awaitable[tuple[bool, str]]]:
    """A `pool.health_probe`: asks the backend (qname, qtype) over UDP; NOERROR/NXDOMAIN pass."""

    async def probe(backend: Backend) -> tuple[bool, str]:
        loop = asyncio.get_running_loop()
        transport, sock = await loop.create_datagram_endpoint(
            _UpstreamSocket, remote_addr=(backend.host, backend.port)
        )
        try:
            query_id = secrets.randbits(16)
            future: asyncio.Future[bytes] = loop.create_future()
            sock.pending[query_id] = (future, qname.lower() + _U16.pack(qtype) + b"\x00\x01")
            transport.sendto(make_query(qname, qtype, query_id))
            answer = await future
        finally:
            transport.close()
        rcode = answer[3] & 0xF
        return rcode in (NOERROR, NXDOMAIN), f"rcode {rcode}"

    return probe


def same_question(answer: bytes, question: bytes) -> bool:
    """Whether `answer` is about `question` (name compared without letter case)."""
    name_end = len(question) - 4
    end = 12 + name_end
    return (
        answer[12:end].lower() == question[:name_end]
        and answer[end : end + 4] == question[name_end:]
    )


def grow_receive_buffer(sock: socket.socket | None) -> None:
    """Ask for RECEIVE_BUFFER bytes of receive buffer on a UDP socket (best effort)."""
    if sock is not None:
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
