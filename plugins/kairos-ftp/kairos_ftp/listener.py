"""The `ftp` protocol listener: accepts control connections, enforces limits, runs sessions."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections import Counter
from typing import Any

from kairos_core import GatewayServices
from kairos_ftp import live
from kairos_ftp.channel import MAX_LINE, ControlChannel
from kairos_ftp.context import ListenerContext
from kairos_ftp.data import PortAllocator
from kairos_ftp.metrics import ListenerMetrics
from kairos_ftp.probe import FTP_SCHEMES, install_probes
from kairos_ftp.session import FtpSession
from kairos_ftp.settings import FtpListenerSettings, port_range
from kairos_ftp.tls import gateway_context

log = logging.getLogger("kairos.ftp")


class ListenerSetupError(OSError):
    """The listener's settings do not fit the configuration (an OSError, so the gateway
    reports it against `listeners[i]` like a port that cannot be bound)."""


class FtpListener:
    """A running FTP proxy listener (the RunningService the gateway closes)."""

    context: ListenerContext

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.port = 0
        self.sessions: set[asyncio.Task[None]] = set()
        self.per_client: Counter[str] = Counter()

    async def listen(
        self,
        listener: Any,
        settings: FtpListenerSettings,
        services: GatewayServices,
        tls: ssl.SSLContext | None,
    ) -> None:
        """Bind, then name the listener (by its real port) and start serving sessions."""
        self.server = await asyncio.start_server(
            self._accept, listener.host, listener.port, limit=MAX_LINE, backlog=256
        )
        sockets = self.server.sockets
        self.port = int(sockets[0].getsockname()[1]) if sockets else listener.port
        name = listener.name or f"{listener.host}:{self.port}"
        ports = port_range(settings.passive_ports) if settings.passive_ports else None
        self.context = ListenerContext(
            name=name,
            settings=settings,
            metrics=ListenerMetrics(services, name),
            pools=lambda: live.pools_of(services),
            ports=PortAllocator(ports),
            tls=tls,
        )

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # our own task (not the one asyncio would create), so close() may cancel it cleanly
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self.sessions.add(task)
        task.add_done_callback(self.sessions.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        channel = ControlChannel(reader, writer)
        peer = channel.peer_ip
        context = self.context
        settings = context.settings
        context.metrics.sessions.inc()
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, 1)  # ABOR's urgent byte
        try:
            if len(self.sessions) > settings.max_sessions:
                context.metrics.error("session_limit")
                await _refuse(channel, "Too many connections: try again later.")
                return
            if self.per_client[peer] >= settings.max_sessions_per_client:
                context.metrics.error("client_limit")
                await _refuse(channel, "Too many connections from your address.")
                return
            self.per_client[peer] += 1
            context.metrics.active.inc()
            try:
                await FtpSession(context, channel).run()
            finally:
                context.metrics.active.dec()
                self.per_client[peer] -= 1
                if not self.per_client[peer]:
                    del self.per_client[peer]
        except Exception:
            log.exception("ftp %s: session from %s failed", context.name, peer)
        finally:
            channel.close()

    async def close(self) -> None:
        """Stop accepting and end every session (their sockets close with them)."""
        if self.server is not None:
            self.server.close()
        sessions = list(self.sessions)
        for task in sessions:
            task.cancel()
        if sessions:
            await asyncio.gather(*sessions, return_exceptions=True)
        if self.server is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self.server.wait_closed()
            self.server = None


async def _refuse(channel: ControlChannel, text: str) -> None:
    with contextlib.suppress(OSError):
        await channel.reply(421, text)
    await channel.aclose()


def check_pools(settings: FtpListenerSettings, services: GatewayServices) -> None:
    """Every pool the listener names must exist and hold only ftp:// / ftps:// backends."""
    for field, name in settings.pool_names().items():
        pool = services.pools.get(name)
        if pool is None:
            known = ", ".join(sorted(services.pools)) or "none"
            raise ListenerSetupError(f"config.{field}: unknown upstream {name!r}; defined: {known}")
        wrong = [b.url for b in pool.backends if b.scheme not in FTP_SCHEMES]
        if wrong:
            raise ListenerSetupError(
                f"config.{field}: upstream {name!r} has non-FTP backends ({', '.join(wrong)}); "
                "use ftp:// or ftps:// URLs"
            )


async def start_ftp(
    listener: Any, settings: FtpListenerSettings, services: GatewayServices
) -> FtpListener:
    """Start one `ftp` listener (the ProtocolPlugin's `start`)."""
    check_pools(settings, services)
    install_probes(services.pools.values())
    tls = gateway_context(settings.tls) if settings.tls is not None else None
    running = FtpListener()
    await running.listen(listener, settings, services, tls)
    log.info("ftp listener %s forwarding to %s", running.context.name, _targets(settings))
    return running


def _targets(settings: FtpListenerSettings) -> str:
    parts = [f"upstream {settings.upstream}"] if settings.upstream else []
    parts += [f"{alias} -> {pool}" for alias, pool in settings.aliases.items()]
    return ", ".join(parts)
