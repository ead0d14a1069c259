"""Open a control connection to a backend of a pool: balancing, breaker, greeting, AUTH TLS."""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass

from kairos_core import BROKEN, CONNECT_ERROR, TIMEOUT, Backend, NoBackendAvailable, UpstreamPool
from kairos_ftp.channel import MAX_LINE, ChannelClosed, ControlChannel, ProtocolError, Reply
from kairos_ftp.tls import backend_context, backend_server_name

log = logging.getLogger("kairos.ftp")

CONNECTED = 220
"""The outcome reported to the pool for a backend that greeted us properly."""


class BackendUnavailable(Exception):
    """No backend of the pool could be reached (or none is available)."""


class BackendRefused(Exception):
    """The backend answered a setup command (AUTH TLS, PBSZ, PROT) with an error."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.text)
        self.reply = reply


@dataclass(slots=True)
class BackendConnection:
    """A connected, greeted (and maybe TLS-protected) control connection to one backend."""

    pool: UpstreamPool
    backend: Backend
    channel: ControlChannel
    greeting: Reply
    data_tls: ssl.SSLContext | None
    """Set when backend data connections are protected (PROT P)."""
    server_name: str
    released: bool = False

    def release(self) -> None:
        """Close the connection and give the backend's in-flight slot back (once)."""
        self.channel.close()
        if not self.released:
            self.released = True
            self.backend.release()


async def open_control(
    host: str,
    port: int,
    timeout: float,
    tls: ssl.SSLContext | None = None,
    server_name: str | None = None,
    data_protection: bool = True,
) -> tuple[ControlChannel, Reply]:
    """Connect, read the 220 greeting, and with `tls` upgrade (AUTH TLS, PBSZ 0, PROT P/C)."""
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port, limit=MAX_LINE)
        channel = ControlChannel(reader, writer)
        try:
            greeting = await channel.read_reply()
            while greeting.preliminary:  # "120 ready in n minutes": wait for the 220
                greeting = await channel.read_reply()
            if greeting.code != 220:
                raise BackendRefused(greeting)
            if tls is not None:
                await _expect(channel, "AUTH TLS", 234)
                await channel.start_tls(tls, server_hostname=server_name, timeout=timeout)
                await _expect(channel, "PBSZ 0", 200)
                await _expect(channel, "PROT P" if data_protection else "PROT C", 200)
        except BaseException:
            channel.close()
            raise
    return channel, greeting


async def _expect(channel: ControlChannel, command: str, code: int) -> None:
    await channel.command(command)
    reply = await channel.read_reply()
    if reply.code != code:
        raise BackendRefused(reply)


async def connect_backend(
    pool: UpstreamPool,
    attempts: int,
    timeout: float,
    data_protection: bool,
) -> BackendConnection:
    """Pick a backend (another one after a failure) and connect; raise BackendUnavailable."""
    tried: list[Backend] = []
    last = "no backend tried"
    for _ in range(attempts):
        try:
            backend = pool.choose(None, tried)
        except NoBackendAvailable as exc:
            if tried:
                break
            raise BackendUnavailable(str(exc)) from None
        if backend in tried:
            break
        tried.append(backend)
        tls = backend_context(pool) if backend.scheme == "ftps" else None
        server_name = backend_server_name(pool, backend.host)
        backend.attempt()
        try:
            channel, greeting = await open_control(
                backend.host, backend.port, timeout, tls, server_name, data_protection
            )
        except TimeoutError:
            outcome, last = TIMEOUT, f"{backend.name}: no greeting within {timeout:g}s"
        except (ChannelClosed, ProtocolError, BackendRefused) as exc:
            outcome, last = BROKEN, f"{backend.name}: {exc}"
        except (OSError, ssl.SSLError) as exc:
            outcome, last = CONNECT_ERROR, f"{backend.name}: {exc.strerror or exc}"
        else:
            backend.report(CONNECTED)
            data_tls = tls if tls is not None and data_protection else None
            return BackendConnection(pool, backend, channel, greeting, data_tls, server_name)
        backend.report(outcome)
        backend.release()
        log.warning("ftp backend %s/%s unavailable: %s", pool.name, backend.name, last)
    raise BackendUnavailable(last)
