"""Data commands of a session: PASV/EPSV/PORT/EPRT set up both legs, transfers relay them."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import TYPE_CHECKING, Any

from kairos_ftp.addresses import (
    AddressError,
    epsv_reply_text,
    format_eprt_arg,
    format_port_arg,
    normalize_ip,
    parse_eprt_arg,
    parse_epsv_reply,
    parse_pasv_reply,
    parse_port_arg,
    pasv_reply_text,
    same_host,
)
from kairos_ftp.channel import Command, Reply, make_reply
from kairos_ftp.data import (
    ConnectingLeg,
    DataLink,
    Leg,
    ListeningLeg,
    NoFreePort,
    PortAllocator,
    TLSPlan,
)
from kairos_ftp.errors import BackendLost
from kairos_ftp.pipe import RelayResult

if TYPE_CHECKING:
    from kairos_ftp.session import FtpSession

TRANSFER_DIRECTIONS = {
    "RETR": "download",
    "STOR": "upload",
    "STOU": "upload",
    "APPE": "upload",
    "LIST": "listing",
    "NLST": "listing",
    "MLSD": "listing",
}
_NO_EPSV = frozenset({500, 501, 502, 504, 522})
_ANY_PORT = PortAllocator(None)


def _reply(code: int, text: str) -> Reply:
    return Reply(code, (make_reply(code, text),))


class DataCommands:
    """PASV, EPSV, PORT, EPRT and the transfer commands of one session."""

    def __init__(self, session: FtpSession) -> None:
        self.session = session
        self.link: DataLink | None = None
        self.epsv_all = False
        self.backend_epsv = True
        self.counted = False
        self.client_aborted = False
        """The client sent ABOR during the current transfer."""

    def drop(self) -> None:
        """Abort a transfer or release a prepared data connection."""
        link, self.link = self.link, None
        if link is not None:
            link.abort("session ended")

    async def handle(self, command: Command) -> None:
        """Run one data command (the session is logged in to a backend)."""
        verb = command.verb
        client = self.session.client
        if verb in TRANSFER_DIRECTIONS:
            await self._transfer(command, TRANSFER_DIRECTIONS[verb])
        elif verb in ("LPRT", "LPSV"):
            await client.reply(502, f"{verb} not implemented: use EPRT or EPSV.")
        elif self.epsv_all and verb != "EPSV":
            await client.reply(503, f"{verb} not allowed after EPSV ALL.")
        elif self._data_protection_missing():
            await client.reply(522, "Data connections must be protected: send PROT P.")
        elif verb in ("PASV", "EPSV"):
            await self._passive(command, verb == "EPSV")
        else:
            await self._active(command, verb == "EPRT")

    def _data_protection_missing(self) -> bool:
        tls = self.session.settings.tls
        return tls is not None and tls.require_data and not self.session.private_data

    def _client_tls(self) -> TLSPlan | None:
        context = self.session.context.tls
        if context is None or not self.session.private_data:
            return None
        return TLSPlan(context, server_side=True)

    async def _passive(self, command: Command, extended: bool) -> None:
        session = self.session
        client = session.client
        local = normalize_ip(client.local_ip)
        advertised = ""
        if extended:
            argument = command.text.strip().upper()
            if argument == "ALL":
                self.epsv_all = True
                await client.reply(200, "EPSV ALL accepted.")
                return
            wanted = "2" if local.version == 6 else "1"
            if argument and argument != wanted:
                await client.reply(522, f"Network protocol not supported, use ({wanted})")
                return
        else:
            advertised = session.settings.passive_address or (
                str(local) if local.version == 4 else ""
            )
            if not advertised:
                await client.reply(425, "PASV needs IPv4: use EPSV.")
                return
        backend_leg = await self._backend_leg()
        if isinstance(backend_leg, Reply):
            await client.send(backend_leg.raw)
            return
        try:
            sock = session.context.ports.listen(client.local_ip)
        except NoFreePort:
            backend_leg.close()
            session.metrics.error("data")
            await client.reply(425, "Can't open passive connection: no free port.")
            return
        leg = ListeningLeg(sock, client.peer_ip)
        await leg.open()
        leg.tls = self._client_tls()
        self._prepare(DataLink(leg, backend_leg))
        if extended:
            await client.reply(229, epsv_reply_text(leg.port))
        else:
            await client.reply(227, pasv_reply_text(advertised, leg.port))

    async def _active(self, command: Command, extended: bool) -> None:
        session = self.session
        client = session.client
        try:
            ip, port = parse_eprt_arg(command.arg) if extended else parse_port_arg(command.arg)
        except AddressError as exc:
            await client.reply(501, str(exc))
            return
        if not same_host(ip, client.peer_ip) or port < 1024:
            session.metrics.error("bounce")
            await client.reply(
                504, "Refused: the data address must be your own, on a port >= 1024."
            )
            return
        backend_leg = await self._backend_leg()
        if isinstance(backend_leg, Reply):
            await client.send(backend_leg.raw)
            return
        leg = ConnectingLeg(ip, port, local_ip=client.local_ip)
        leg.tls = self._client_tls()
        self._prepare(DataLink(leg, backend_leg))
        await client.reply(200, f"{'EPRT' if extended else 'PORT'} command successful.")

    def _prepare(self, link: DataLink) -> None:
        self.drop()
        self.link = link

    async def _backend_leg(self) -> Leg | Reply:
        """Ask the backend for its side of the data connection; a Reply when it refuses."""
        session = self.session
        backend = session.backend
        assert backend is not None
        channel = backend.channel
        leg: Leg
        if session.settings.backend_data == "passive":
            host, port = channel.peer_ip, 0
            if self.backend_epsv:
                reply = await session.backend_command("EPSV")
                if reply.code == 229:
                    try:
                        port = parse_epsv_reply(reply.raw)
                    except AddressError:
                        return _reply(425, "The FTP server sent an unusable EPSV reply.")
                elif reply.code in _NO_EPSV:
                    self.backend_epsv = False
                else:
                    return reply
            if not port:
                reply = await session.backend_command("PASV")
                if reply.code != 227:
                    return reply
                try:
                    pasv_host, port = parse_pasv_reply(reply.raw)
                except AddressError:
                    return _reply(425, "The FTP server sent an unusable PASV reply.")
                if session.settings.backend_passive_address == "reply":
                    host = pasv_host
            connecting = ConnectingLeg(host, port)
            connecting.start()
            leg = connecting
        else:
            listening = ListeningLeg(_ANY_PORT.listen(channel.local_ip), channel.peer_ip)
            await listening.open()
            local = normalize_ip(channel.local_ip)
            if isinstance(local, ipaddress.IPv4Address):
                line = f"PORT {format_port_arg(str(local), listening.port)}"
            else:
                line = f"EPRT {format_eprt_arg(str(local), listening.port)}"
            reply = await session.backend_command(line)
            if reply.code != 200:
                listening.close()
                return reply
            leg = listening
        if backend.data_tls is not None:
            leg.tls = TLSPlan(
                backend.data_tls, server_side=False, server_hostname=backend.server_name
            )
        return leg

    async def _transfer(self, command: Command, direction: str) -> None:
        session = self.session
        link, self.link = self.link, None
        if link is None:
            await session.client.reply(425, "Use PORT, EPRT, PASV or EPSV first.")
            return
        if self._data_protection_missing():
            link.close()
            await session.client.reply(522, "Data connections must be protected: send PROT P.")
            return
        self.link = link
        settings = session.settings
        await session.to_backend(command.line)
        link.begin(
            direction == "upload",
            settings.data_connect_timeout,
            settings.data_timeout,
            int(settings.buffer_size),
            settings.zero_copy,
        )
        self.counted = False
        self.client_aborted = False
        try:
            await self._replies(link, direction)
        finally:
            if self.link is link:
                self.link = None
            link.abort("transfer over")
            if not self.counted:  # the session ended before the transfer's final reply
                session.metrics.error("data")
                session.metrics.transfer(direction, "failed", *link.counts())

    async def _replies(self, link: DataLink, direction: str) -> None:
        """Relay the transfer's replies; ABOR (and STAT/NOOP) may arrive meanwhile."""
        session = self.session
        finals, watching, transfer_done = 1, True, False
        relay_task = asyncio.ensure_future(link.result())
        try:
            while finals:
                reply_task = session.reply_task()
                waiters: set[asyncio.Future[Any]] = {reply_task}
                command_task = session.command_task() if watching else None
                if command_task is not None:
                    waiters.add(command_task)
                if not relay_task.done():
                    waiters.add(relay_task)
                timeout = None if not relay_task.done() else session.settings.reply_timeout
                done, _ = await asyncio.wait(
                    waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    raise BackendLost("no reply after the transfer ended")
                if command_task is not None and command_task in done:
                    extra = await self._during_transfer(session.take_command(), link)
                    finals += extra
                    watching = extra > 0
                if reply_task in done:
                    reply = session.take_reply()
                    if reply.preliminary:
                        await session.client.send(reply.raw)
                    elif transfer_done:
                        finals -= 1
                        await session.client.send(reply.raw)
                    else:
                        finals -= 1
                        transfer_done = True
                        await self._final(reply, link, direction)
        finally:
            relay_task.cancel()

    async def _during_transfer(self, command: Command, link: DataLink) -> int:
        """Handle a command sent while a transfer runs; returns the extra final replies due."""
        session = self.session
        if command.verb == "ABOR":
            self.client_aborted = True
            await session.to_backend(b"ABOR")  # first, so the server aborts its own transfer
            link.abort("aborted by the client")
            return 1
        if command.verb in ("STAT", "NOOP"):
            await session.to_backend(command.line)
            return 1
        session.deferred.append(command)
        return 0

    async def _final(self, reply: Reply, link: DataLink, direction: str) -> None:
        """Send the transfer's final reply once the data has really been delivered."""
        session = self.session
        if 200 <= reply.code < 300:
            result = await link.result()
        else:
            link.abort("refused by the FTP server")
            result = await link.result()
        if result.ok or not (reply.code < 300 or reply.code in (425, 426)):
            await session.client.send(reply.raw)  # success, or the server's own refusal
        elif not link.client_connected:
            await session.client.reply(425, "Can't open data connection.")
        else:
            await session.client.reply(426, "Connection closed; transfer aborted.")
        self._count(direction, reply, result)

    def _count(self, direction: str, reply: Reply, result: RelayResult) -> None:
        self.counted = True
        metrics = self.session.metrics
        if result.ok and reply.code < 300:
            outcome = "ok"
        elif self.client_aborted:  # not any 426: one also follows a client that vanished
            outcome = "aborted"
        else:
            outcome = "failed"
            metrics.error("data")
        metrics.transfer(direction, outcome, result.client_bytes, result.backend_bytes)
