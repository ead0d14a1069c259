"""Data connections: the gateway's passive listeners, its connect-backs, and the link of both legs."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import ssl
from dataclasses import dataclass

from kairos_ftp import splice
from kairos_ftp.addresses import same_host
from kairos_ftp.pipe import DataEnd, DataRelay, RelayResult


class NoFreePort(OSError):
    """Every port of the passive range is in use."""


class PortAllocator:
    """Binds passive listening sockets, on ports from a configured range or any free port."""

    def __init__(self, ports: range | None) -> None:
        self.ports = ports
        self._cursor = 0

    def listen(self, ip: str) -> socket.socket:
        """A non-blocking socket listening on `ip` (a port from the range, if one is set)."""
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        if self.ports is None:
            return _bound(family, ip, 0)
        count = len(self.ports)
        for step in range(count):
            index = (self._cursor + step) % count
            try:
                sock = _bound(family, ip, self.ports[index])
            except OSError as exc:
                if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                    continue
                raise
            self._cursor = index + 1
            return sock
        raise NoFreePort(
            errno.EADDRINUSE,
            f"all {count} passive ports {self.ports.start}-{self.ports.stop - 1} are in use",
        )


def _bound(family: socket.AddressFamily, ip: str, port: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((ip, port))
        sock.listen(4)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


@dataclass(frozen=True, slots=True)
class TLSPlan:
    """How one leg's socket is wrapped in TLS once connected."""

    context: ssl.SSLContext
    server_side: bool
    server_hostname: str | None = None


class Leg:
    """One side of a data connection; `connect()` yields the connected, ready DataEnd."""

    tls: TLSPlan | None = None

    def start(self) -> None:
        """Begin connecting (a no-op for listening legs, which accept from the start)."""

    async def connect(self) -> DataEnd:
        """The connected end."""
        raise NotImplementedError

    def close(self) -> None:
        """Release sockets that were never used."""


class ListeningLeg(Leg):
    """The gateway listens; only `allowed_ip` may connect (a port thief is dropped)."""

    def __init__(self, sock: socket.socket, allowed_ip: str) -> None:
        self.sock = sock
        self.port = int(sock.getsockname()[1])
        self.allowed_ip = allowed_ip
        self.refused = 0
        self._accepted: asyncio.Future[DataEnd] = asyncio.get_running_loop().create_future()
        self._server: asyncio.Server | None = None

    async def open(self) -> None:
        """Start accepting."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, sock=self.sock)

    def _protocol(self) -> asyncio.Protocol:
        leg = self

        class Gatekeeper(DataEnd):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                super().connection_made(transport)
                peer = transport.get_extra_info("peername")
                if leg._accepted.done() or not peer or not same_host(peer[0], leg.allowed_ip):
                    leg.refused += 1
                    self.abort()
                    return
                leg._accepted.set_result(self)
                leg._stop_listening()

        return Gatekeeper()

    def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def connect(self) -> DataEnd:
        """Wait for the expected peer to connect."""
        return await asyncio.shield(self._accepted)

    def close(self) -> None:
        """Stop listening; drop an accepted but unused connection."""
        self._stop_listening()
        with contextlib.suppress(OSError):
            self.sock.close()
        if self._accepted.done() and not self._accepted.cancelled():
            self._accepted.result().abort()
        else:
            self._accepted.cancel()


class ConnectingLeg(Leg):
    """The gateway connects to (ip, port)."""

    def __init__(self, ip: str, port: int, local_ip: str | None = None) -> None:
        self.ip = ip
        self.port = port
        self.local_ip = local_ip
        self._task: asyncio.Task[DataEnd] | None = None

    def start(self) -> None:
        """Begin connecting now (idempotent)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> DataEnd:
        loop = asyncio.get_running_loop()
        local = (self.local_ip, 0) if self.local_ip else None
        _transport, end = await loop.create_connection(
            DataEnd, self.ip, self.port, local_addr=local
        )
        return end

    async def connect(self) -> DataEnd:
        """The connected end."""
        self.start()
        assert self._task is not None
        return await asyncio.shield(self._task)

    def close(self) -> None:
        """Cancel a pending connect or drop an unused connection."""
        task = self._task
        if task is None:
            return
        if not task.done():
            task.cancel()
        elif not task.cancelled() and task.exception() is None:
            task.result().abort()


async def secure(end: DataEnd, plan: TLSPlan, timeout: float) -> None:
    """Wrap a connected end in TLS (server or client side)."""
    assert end.transport is not None
    loop = asyncio.get_running_loop()
    end.upgrading = True
    try:
        wrapped = await loop.start_tls(
            end.transport,
            end,
            plan.context,
            server_side=plan.server_side,
            server_hostname=plan.server_hostname,
            ssl_handshake_timeout=timeout,
        )
    finally:
        end.upgrading = False
    assert wrapped is not None
    end.transport = wrapped
    if end.peer is None:
        wrapped.pause_reading()


class DataLink:
    """Both legs of one data connection, from PASV/PORT to the end of the transfer."""

    def __init__(self, client: Leg, backend: Leg) -> None:
        self.client = client
        self.backend = backend
        self.relay: DataRelay | splice.SpliceRelay | None = None
        self.client_connected = False
        self._task: asyncio.Task[RelayResult] | None = None

    def begin(
        self,
        upload: bool,
        connect_timeout: float,
        idle_timeout: float,
        buffer_size: int,
        zero_copy: bool = True,
    ) -> None:
        """The transfer command was sent: connect what is left, then relay."""
        self.client.start()
        self.backend.start()
        zero_copy = zero_copy and splice.AVAILABLE and not (self.client.tls or self.backend.tls)
        self._task = asyncio.get_running_loop().create_task(
            self._run(upload, connect_timeout, idle_timeout, buffer_size, zero_copy)
        )

    async def _ready(self, leg: Leg, timeout: float) -> DataEnd:
        end = await leg.connect()
        if leg.tls is not None:
            await secure(end, leg.tls, timeout)
        return end

    async def _run(
        self,
        upload: bool,
        connect_timeout: float,
        idle_timeout: float,
        buffer_size: int,
        zero_copy: bool,
    ) -> RelayResult:
        client_task = asyncio.ensure_future(self._ready(self.client, connect_timeout))
        backend_task = asyncio.ensure_future(self._ready(self.backend, connect_timeout))
        tasks = {client_task, backend_task}
        try:
            async with asyncio.timeout(connect_timeout):
                while tasks:
                    done, tasks = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        task.result()  # raises the leg's failure
            client_end, backend_end = client_task.result(), backend_task.result()
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            self.client_connected = (
                client_task.done() and not client_task.cancelled() and not client_task.exception()
            )
            for task in (client_task, backend_task):
                task.cancel()
            self.close()
            side = "backend" if self.client_connected else "client"
            reason = str(exc) or type(exc).__name__
            return RelayResult(False, 0, 0, f"{side} data connection not established: {reason}")
        finally:
            for task in (client_task, backend_task):
                if not task.done():
                    task.cancel()
        self.client_connected = True
        relay: DataRelay | splice.SpliceRelay
        if zero_copy:
            relay = splice.SpliceRelay(client_end, backend_end, upload, idle_timeout)
        else:
            relay = DataRelay(client_end, backend_end, upload, idle_timeout, buffer_size)
        self.relay = relay
        relay.start()
        return await relay.done

    async def result(self) -> RelayResult:
        """Wait for the transfer to end."""
        task = self._task
        assert task is not None
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled():
                return RelayResult(False, 0, 0, "aborted")
            raise

    def counts(self) -> tuple[int, int]:
        """Bytes relayed so far: (from the client, from the backend)."""
        return (0, 0) if self.relay is None else self.relay.counts()

    @property
    def started(self) -> bool:
        """A transfer command is using this link."""
        return self._task is not None

    def abort(self, reason: str) -> None:
        """Stop the transfer and release everything."""
        if self.relay is not None:
            self.relay.abort(reason)
        elif self._task is not None and not self._task.done():
            self._task.cancel()
        self.close()

    def close(self) -> None:
        """Release both legs' sockets (the relay closes its own)."""
        self.client.close()
        self.backend.close()
