"""DNS over TCP (RFC 7766): pipelined queries per connection, answered as they complete."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from typing import TYPE_CHECKING

from kairos_dns.config import DnsListenerConfig
from kairos_dns.steering import steer_by_client
from kairos_dns.wire import Malformed, Query, parse_query

if TYPE_CHECKING:
    from kairos_dns.listener import DnsListener

log = logging.getLogger("kairos.dns")

_LENGTH = struct.Struct("!H")


class TcpSessions:
    """The TCP side of a DNS listener: accepts connections and serves each one."""

    def __init__(self, owner: DnsListener, settings: DnsListenerConfig) -> None:
        self.owner = owner
        self.server: asyncio.Server | None = None
        self.connections: set[asyncio.Task[None]] = set()
        self.configure(settings)

    def configure(self, settings: DnsListenerConfig) -> None:
        """Apply (possibly reloaded) limits and timeouts."""
        self.idle_timeout = settings.tcp_idle_timeout
        self.max_connections = settings.tcp_max_connections
        self.max_inflight = settings.tcp_max_inflight

    async def listen(self, host: str, port: int, reuse_port: bool) -> int:
        """Start accepting; returns the bound port."""
        self.server = await asyncio.start_server(
            self._accept, host, port, reuse_address=True, reuse_port=reuse_port or None
        )
        return int(self.server.sockets[0].getsockname()[1])

    def steer(self, workers: int) -> bool:
        """Send each client address to the same worker (see steering.py)."""
        steered = False
        for sock in self.server.sockets if self.server is not None else ():
            raw = socket.socket(fileno=sock.fileno())
            try:
                steered = steer_by_client(raw, workers)
            finally:
                raw.detach()
        return steered

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self.connections) >= self.max_connections:
            writer.close()
            return
        self.connections.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        except Exception:
            log.exception("DNS TCP connection failed")
        finally:
            self.connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        address = peer[0] if peer else ""
        owner = self.owner
        inflight: set[asyncio.Task[None]] = set()
        slots = asyncio.Semaphore(self.max_inflight)
        loop = asyncio.get_running_loop()
        try:
            while True:
                header = await self._read(reader, 2, inflight)
                if header is None:
                    return
                data = await self._read(reader, _LENGTH.unpack(header)[0], inflight)
                if data is None:
                    return
                try:
                    query = parse_query(data)
                except Malformed as exc:
                    owner.metrics.malformed["tcp"].inc()
                    if exc.reply is None:
                        return  # not DNS at all: hang up
                    self._write(writer, exc.reply)
                    continue
                refused = owner.limited_tcp(address, query)
                answer = refused or owner.resolver.cached(query, "tcp")
                if answer is not None:
                    owner.metrics.answered("tcp", query.qtype, answer)
                    self._write(writer, answer)
                    continue
                await slots.acquire()
                task = loop.create_task(self._answer(writer, query, data, slots))
                inflight.add(task)
                task.add_done_callback(inflight.discard)
        finally:
            for task in inflight:
                task.cancel()

    async def _read(
        self, reader: asyncio.StreamReader, size: int, inflight: set[asyncio.Task[None]]
    ) -> bytes | None:
        """`size` bytes, or None at end of stream or after the idle timeout with nothing pending."""
        while True:
            try:
                async with asyncio.timeout(self.idle_timeout):
                    return await reader.readexactly(size)
            except asyncio.IncompleteReadError as exc:
                if exc.partial:
                    raise
                if inflight:  # the client half-closed: finish what it asked, then hang up
                    await asyncio.gather(*inflight, return_exceptions=True)
                return None
            except TimeoutError:
                if not inflight:
                    return None  # idle: RFC 7766 lets the server close

    async def _answer(
        self, writer: asyncio.StreamWriter, query: Query, data: bytes, slots: asyncio.Semaphore
    ) -> None:
        try:
            answer = await self.owner.resolver.resolve(query, data, "tcp")
            self.owner.metrics.answered("tcp", query.qtype, answer)
            self._write(writer, answer)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            slots.release()

    @staticmethod
    def _write(writer: asyncio.StreamWriter, message: bytes) -> None:
        if not writer.is_closing():
            writer.write(_LENGTH.pack(len(message)) + message)

    async def close(self) -> None:
        """Stop accepting and drop open connections."""
        if self.server is not None:
            self.server.close()
        for task in list(self.connections):
            task.cancel()
        if self.connections:
            await asyncio.gather(*self.connections, return_exceptions=True)
        if self.server is not None:
            await self.server.wait_closed()
