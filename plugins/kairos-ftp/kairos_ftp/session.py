"""One client's FTP session: the control loop, login routing, TLS, and faithful relaying."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

from kairos_ftp.backend import BackendConnection, BackendUnavailable, connect_backend
from kairos_ftp.channel import (
    ChannelClosed,
    Command,
    ControlChannel,
    LineTooLong,
    ProtocolError,
    Reply,
    make_reply,
)
from kairos_ftp.context import FEATURES_WITHOUT_LOGIN, ListenerContext, patch_features
from kairos_ftp.errors import BackendLost, SessionOver
from kairos_ftp.transfers import TRANSFER_DIRECTIONS, DataCommands

log = logging.getLogger("kairos.ftp")


class FtpSession:
    """Relays one client's control connection to the backend its login routes to."""

    def __init__(self, context: ListenerContext, client: ControlChannel) -> None:
        self.context = context
        self.settings = context.settings
        self.metrics = context.metrics
        self.client = client
        self.backend: BackendConnection | None = None
        self.logged_in = False
        self.login_failures = 0
        self.pbsz = False
        self.private_data = False
        self.utf8 = False
        self.deferred: deque[Command] = deque()
        self.data = DataCommands(self)
        self._reading: asyncio.Task[Command] | None = None
        self._replying: asyncio.Task[Reply] | None = None

    # -- the loop --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Greet, then handle commands until QUIT, an error, an idle timeout or a disconnect."""
        try:
            await self.client.reply(220, self.settings.greeting)
            while True:
                command = self.deferred.popleft() if self.deferred else await self.next_command()
                if command is None:
                    self.metrics.error("idle_timeout")
                    await self.client.reply(421, "Idle timeout: closing control connection.")
                    return
                await self.dispatch(command)
        except SessionOver:
            return
        except LineTooLong:
            self.metrics.error("protocol")
            with contextlib.suppress(OSError):
                await self.client.reply(500, "Command line too long.")
        except BackendLost as exc:
            self.metrics.error("backend_lost")
            log.warning("ftp %s: backend connection lost: %s", self.context.name, exc)
            with contextlib.suppress(OSError):
                await self.client.reply(421, "Service not available: the FTP server went away.")
        except (ConnectionError, OSError):
            return  # the client went away
        finally:
            await self.close()

    async def close(self) -> None:
        """Release the data link, the backend and the client connection."""
        self.data.drop()
        for task in (self._reading, self._replying):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        if self.backend is not None:
            self.backend.release()
            self.backend = None
        await self.client.aclose()

    def command_task(self) -> asyncio.Task[Command]:
        """The pending read of the next client command (kept across waits, never cancelled)."""
        if self._reading is None:
            self._reading = asyncio.get_running_loop().create_task(self.client.read_command())
        return self._reading

    def take_command(self) -> Command:
        """The command the finished read produced (raises what the read raised)."""
        task, self._reading = self._reading, None
        assert task is not None
        assert task.done()
        return task.result()

    async def next_command(self) -> Command | None:
        """The next command, or None after `idle_timeout` without one."""
        task = self.command_task()
        done, _ = await asyncio.wait({task}, timeout=self.settings.idle_timeout)
        return self.take_command() if done else None

    def reply_task(self) -> asyncio.Task[Reply]:
        """The pending read of the backend's next reply."""
        assert self.backend is not None
        if self._replying is None:
            channel = self.backend.channel
            self._replying = asyncio.get_running_loop().create_task(channel.read_reply())
        return self._replying

    def take_reply(self) -> Reply:
        """The reply the finished read produced; BackendLost if the read failed."""
        task, self._replying = self._replying, None
        assert task is not None
        assert task.done()
        try:
            return task.result()
        except (ChannelClosed, ProtocolError, LineTooLong, OSError) as exc:
            raise BackendLost(str(exc) or type(exc).__name__) from None

    async def backend_reply(self) -> Reply:
        """The backend's next reply within `reply_timeout`."""
        task = self.reply_task()
        done, _ = await asyncio.wait({task}, timeout=self.settings.reply_timeout)
        if not done:
            raise BackendLost(f"no reply within {self.settings.reply_timeout:g}s")
        return self.take_reply()

    async def to_backend(self, line: bytes) -> None:
        """Send a command line to the backend."""
        assert self.backend is not None
        try:
            await self.backend.channel.send(line + b"\r\n")
        except OSError as exc:
            raise BackendLost(str(exc) or type(exc).__name__) from None

    async def backend_command(self, line: str) -> Reply:
        """Send a command of the gateway's own and return the final reply (not relayed)."""
        await self.to_backend(line.encode())
        reply = await self.backend_reply()
        while reply.preliminary:
            reply = await self.backend_reply()
        return reply

    async def relay(self, command: Command) -> Reply:
        """Forward a command and relay every reply up to the final one."""
        await self.to_backend(command.line)
        while True:
            reply = await self.backend_reply()
            await self.client.send(reply.raw)
            if not reply.preliminary:
                return reply

    # -- dispatch --------------------------------------------------------------------------------

    async def dispatch(self, command: Command) -> None:
        """Handle one command locally, as a data command, or by relaying it."""
        verb = command.verb
        local = _LOCAL.get(verb)
        if local is not None:
            await local(self, command)
        elif verb in ("PASV", "EPSV", "PORT", "EPRT", "LPRT", "LPSV") or verb in (
            TRANSFER_DIRECTIONS
        ):
            if self.backend is None:
                await self.client.reply(530, "Please log in with USER and PASS.")
            else:
                await self.data.handle(command)
        elif self.backend is not None:
            reply = await self.relay(command)
            if verb == "REIN" and reply.code < 300:
                self.logged_in = False
        elif verb in _BEFORE_LOGIN:
            await self.client.send(_BEFORE_LOGIN[verb])
        else:
            await self.client.reply(530, "Please log in with USER and PASS.")

    async def _user(self, command: Command) -> None:
        tls = self.settings.tls
        if tls is not None and tls.require_control and not self.client.tls:
            await self.client.reply(530, "TLS required: send AUTH TLS before logging in.")
            return
        routed = self.context.route(command.arg)
        if isinstance(routed, str):
            await self.client.reply(530, routed)
            await self._login_failed()
            return
        user, pool_name = routed
        pool = self.context.pool(pool_name)
        if pool is None:
            self.metrics.error("no_backend")
            await self.client.reply(421, "Service not available for this site.")
            raise SessionOver
        if self.backend is not None and self.backend.pool is not pool:
            self.data.drop()
            self.backend.release()
            self.backend = None
        if self.backend is None:
            try:
                self.backend = await connect_backend(
                    pool,
                    self.settings.connect_attempts,
                    self.settings.connect_timeout,
                    self.settings.backend_data_protection == "private",
                )
            except BackendUnavailable as exc:
                self.metrics.error("no_backend")
                log.warning("ftp %s: no backend for pool %s: %s", self.context.name, pool_name, exc)
                await self.client.reply(
                    421, "Service not available: no FTP server reachable, try again later."
                )
                raise SessionOver from None
            if self.utf8:
                await self.backend_command("OPTS UTF8 ON")
        self.logged_in = False
        reply = await self.relay(Command("USER", user, b"USER " + user))
        await self._login_result(reply)

    async def _pass(self, command: Command) -> None:
        if self.backend is None:
            await self.client.reply(503, "Login with USER first.")
            return
        await self._login_result(await self.relay(command))

    async def _login_result(self, reply: Reply) -> None:
        if reply.code == 230:
            self.logged_in = True
            self.login_failures = 0
        elif reply.code == 530:
            await self._login_failed()

    async def _login_failed(self) -> None:
        self.metrics.error("login")
        self.login_failures += 1
        if self.login_failures >= self.settings.max_login_failures:
            await self.client.reply(421, "Too many failed logins: closing control connection.")
            raise SessionOver

    async def _auth(self, command: Command) -> None:
        context = self.context.tls
        if context is None:
            await self.client.reply(502, "AUTH not supported here.")
        elif command.text.strip().upper() not in ("TLS", "TLS-C", "SSL"):
            await self.client.reply(504, "AUTH type not supported: use AUTH TLS.")
        elif self.client.tls:
            await self.client.reply(503, "Already using TLS.")
        elif self.backend is not None:
            await self.client.reply(503, "AUTH TLS must come before USER.")
        else:
            await self.client.reply(234, "AUTH TLS successful.")
            try:
                await self.client.start_tls(context, timeout=self.settings.connect_timeout)
            except (OSError, TimeoutError) as exc:
                self.metrics.error("tls")
                log.info("ftp %s: TLS handshake with a client failed: %s", self.context.name, exc)
                raise SessionOver from None

    async def _pbsz(self, command: Command) -> None:
        if not self.client.tls:
            await self.client.reply(503, "PBSZ needs a TLS control connection (AUTH TLS).")
            return
        self.pbsz = True
        await self.client.reply(200, "PBSZ=0")

    async def _prot(self, command: Command) -> None:
        level = command.text.strip().upper()
        if not self.client.tls:
            await self.client.reply(503, "PROT needs a TLS control connection (AUTH TLS).")
        elif not self.pbsz:
            await self.client.reply(503, "Send PBSZ before PROT.")
        elif level in ("C", "P"):
            self.private_data = level == "P"
            await self.client.reply(
                200, f"Protection set to {'Private' if self.private_data else 'Clear'}."
            )
        elif level in ("S", "E"):
            await self.client.reply(536, "Protection level not supported.")
        else:
            await self.client.reply(504, "PROT takes C or P.")

    async def _ccc(self, command: Command) -> None:
        await self.client.reply(534, "CCC not allowed: the control connection stays protected.")

    async def _feat(self, command: Command) -> None:
        tls_lines = self.context.tls_features()
        if self.backend is None:
            lines = [" " + f for f in (*FEATURES_WITHOUT_LOGIN, *tls_lines)]
            await self.client.send(make_reply(211, "\n".join(["Features:", *lines, "End"])))
            return
        await self.to_backend(command.line)
        reply = await self.backend_reply()
        if reply.code == 211:
            await self.client.send(patch_features(reply.lines, tls_lines))
        else:
            await self.client.send(reply.raw)

    async def _opts(self, command: Command) -> None:
        if self.backend is not None:
            await self.relay(command)
        elif command.text.strip().upper() in ("UTF8 ON", "UTF8"):
            self.utf8 = True
            await self.client.reply(200, "UTF8 mode enabled.")
        else:
            await self.client.reply(501, "Option not understood before login.")

    async def _quit(self, command: Command) -> None:
        if self.backend is not None:
            with contextlib.suppress(BackendLost):
                await self.to_backend(command.line)
                reply = await self.backend_reply()
                await self.client.send(reply.raw)
                raise SessionOver
        await self.client.reply(221, "Goodbye.")
        raise SessionOver

    async def _host(self, command: Command) -> None:
        await self.client.reply(502, "HOST not supported: log in as user@site.")


_LOCAL = {
    "USER": FtpSession._user,
    "PASS": FtpSession._pass,
    "AUTH": FtpSession._auth,
    "PBSZ": FtpSession._pbsz,
    "PROT": FtpSession._prot,
    "CCC": FtpSession._ccc,
    "FEAT": FtpSession._feat,
    "OPTS": FtpSession._opts,
    "QUIT": FtpSession._quit,
    "HOST": FtpSession._host,
}

_BEFORE_LOGIN = {
    "NOOP": make_reply(200, "NOOP ok."),
    "SYST": make_reply(215, "UNIX Type: L8"),
    "HELP": make_reply(214, "Log in with USER and PASS; AUTH TLS first for FTPS."),
}
