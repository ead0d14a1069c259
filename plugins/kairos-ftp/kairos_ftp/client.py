"""A small asyncio FTP client (passive mode, FTPS, MLST/MLSD) for the HTTP bridge."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime

from kairos_ftp.addresses import AddressError, parse_epsv_reply, parse_pasv_reply
from kairos_ftp.backend import open_control
from kairos_ftp.channel import ControlChannel, Reply

_NO_EPSV = frozenset({500, 501, 502, 504, 522})
_UNSUPPORTED = frozenset({500, 501, 502, 504})


class FtpError(Exception):
    """The server refused a command."""

    def __init__(self, command: str, reply: Reply) -> None:
        verb = command.split(" ", 1)[0]
        super().__init__(f"{verb}: {reply.code} {reply.text}")
        self.command = verb
        self.reply = reply


@dataclass(frozen=True, slots=True)
class Facts:
    """What MLST (or SIZE/MDTM) says about a path."""

    name: str
    type: str
    """`file`, `dir`, or the server's own word (`os.unix=symlink`...)."""
    size: int | None = None
    modified: datetime | None = None

    @property
    def is_dir(self) -> bool:
        """A directory (MLSx `dir`, `cdir` or `pdir`)."""
        return self.type in ("dir", "cdir", "pdir")


def parse_facts(line: str) -> Facts:
    """One MLSx line `fact=value;fact=value; name`."""
    facts_text, _, name = line.partition(" ")
    facts: dict[str, str] = {}
    for item in facts_text.split(";"):
        key, sep, value = item.partition("=")
        if sep:
            facts[key.strip().lower()] = value
    size_text = facts.get("size") or facts.get("sizd")
    return Facts(
        name=name,
        type=facts.get("type", "").lower(),
        size=int(size_text) if size_text and size_text.isascii() and size_text.isdigit() else None,
        modified=parse_time(facts.get("modify", "")),
    )


def parse_time(value: str) -> datetime | None:
    """An FTP timestamp `YYYYMMDDHHMMSS[.sss]` (UTC)."""
    digits = value.strip().split(".", 1)[0]
    if len(digits) != 14 or not digits.isdigit():
        return None
    try:
        return datetime.strptime(digits, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None


class DataStream:
    """An open data connection of one transfer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def close(self, timeout: float = 5.0) -> None:
        """Close (a TLS close_notify first), waiting a bounded time."""
        self.writer.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(timeout):
                await self.writer.wait_closed()

    def abort(self) -> None:
        """Drop the connection at once."""
        transport = self.writer.transport
        if not transport.is_closing():  # aborting a closed transport can crash on 3.11
            transport.abort()


class FtpClient:
    """A logged-in control connection; one command at a time."""

    def __init__(
        self,
        channel: ControlChannel,
        tls: ssl.SSLContext | None,
        server_name: str,
        timeout: float,
    ) -> None:
        self.channel = channel
        self.tls = tls
        self.server_name = server_name
        self.timeout = timeout
        self._epsv = True
        self._mlst = True

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        user: str,
        password: str,
        timeout: float,
        tls: ssl.SSLContext | None = None,
        server_name: str | None = None,
    ) -> FtpClient:
        """Connect, greet (AUTH TLS and PROT P with `tls`), log in and switch to TYPE I."""
        channel, _ = await open_control(host, port, timeout, tls, server_name, True)
        client = cls(channel, tls, server_name or host, timeout)
        try:
            reply = await client.request(f"USER {user}")
            if reply.code == 331:
                reply = await client.request(f"PASS {password}")
            if reply.code != 230:
                raise FtpError("USER", reply)
            await client.expect("TYPE I", 200)
            await client.request("OPTS UTF8 ON")  # best effort: paths are sent as UTF-8
        except BaseException:
            channel.close()
            raise
        return client

    async def request(self, line: str) -> Reply:
        """Send a command, return the final reply."""
        async with asyncio.timeout(self.timeout):
            await self.channel.command(line)
            reply = await self.channel.read_reply()
            while reply.preliminary:
                reply = await self.channel.read_reply()
        return reply

    async def expect(self, line: str, *codes: int) -> Reply:
        """Send a command; raise FtpError unless the reply has one of `codes`."""
        reply = await self.request(line)
        if reply.code not in codes:
            raise FtpError(line, reply)
        return reply

    async def final_reply(self) -> Reply:
        """The final reply of a transfer."""
        async with asyncio.timeout(self.timeout):
            reply = await self.channel.read_reply()
            while reply.preliminary:
                reply = await self.channel.read_reply()
        return reply

    async def _passive_port(self) -> int:
        if self._epsv:
            reply = await self.request("EPSV")
            if reply.code == 229:
                return parse_epsv_reply(reply.raw)
            if reply.code not in _NO_EPSV:
                raise FtpError("EPSV", reply)
            self._epsv = False
        reply = await self.expect("PASV", 227)
        return parse_pasv_reply(reply.raw)[1]  # the control address, not the advertised one

    async def open_data(self, command: str, rest: int = 0) -> DataStream:
        """Open a passive data connection and start `command` on it (after REST when set)."""
        try:
            port = await self._passive_port()
        except AddressError as exc:
            raise ConnectionError(f"unusable passive reply: {exc}") from None
        async with asyncio.timeout(self.timeout):
            reader, writer = await asyncio.open_connection(
                self.channel.peer_ip,
                port,
                ssl=self.tls,
                server_hostname=self.server_name if self.tls else None,
            )
        data = DataStream(reader, writer)
        try:
            if rest:
                await self.expect(f"REST {rest}", 350)
            async with asyncio.timeout(self.timeout):
                await self.channel.command(command)
                reply = await self.channel.read_reply()
            if not reply.preliminary:
                raise FtpError(command, reply)
        except BaseException:
            data.abort()
            raise
        return data

    async def stat(self, path: str) -> Facts | None:
        """What `path` is, or None when it does not exist (MLST; SIZE/MDTM/CWD otherwise)."""
        if self._mlst:
            reply = await self.request(f"MLST {path}")
            if reply.code == 250:
                for line in reply.lines[1:-1] or reply.lines[:1]:
                    text = line.decode("utf-8", "replace").rstrip("\r\n")
                    if text.startswith(" "):
                        return parse_facts(text[1:])
                raise FtpError("MLST", reply)
            if reply.code not in _UNSUPPORTED:
                _absent_or_raise("MLST", reply)
                return None
            self._mlst = False
        size = await self.request(f"SIZE {path}")
        if size.code == 213 and size.text.strip().isdigit():
            modified = await self.request(f"MDTM {path}")
            when = parse_time(modified.text) if modified.code == 213 else None
            return Facts(path.rsplit("/", 1)[-1], "file", int(size.text.strip()), when)
        cwd = await self.request(f"CWD {path}")
        if cwd.code == 250:
            await self.request("CWD /")
            return Facts(path.rsplit("/", 1)[-1], "dir")
        _absent_or_raise("CWD", cwd)
        return None

    async def listing(self, path: str) -> list[Facts]:
        """The entries of a directory (MLSD; bare NLST names when the server lacks MLSD)."""
        if self._mlst:
            lines = await self._read_listing(f"MLSD {path}")
            entries = [parse_facts(line) for line in lines]
            return [e for e in entries if e.type not in ("cdir", "pdir") and e.name]
        names = await self._read_listing(f"NLST {path}")
        return [Facts(name.rsplit("/", 1)[-1], "") for name in names if name]

    async def _read_listing(self, command: str) -> list[str]:
        data = await self.open_data(command)
        try:
            async with asyncio.timeout(self.timeout):
                raw = await data.reader.read()
        finally:
            await data.close()
        reply = await self.final_reply()
        if reply.code not in (226, 250):
            raise FtpError(command, reply)
        text = raw.decode("utf-8", "replace")
        return [line for line in text.splitlines() if line.strip()]

    async def quit(self) -> None:
        """Say goodbye (bounded) and close."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await self.channel.command("QUIT")
                await self.channel.read_reply()
        await self.channel.aclose(1.0)

    def close(self) -> None:
        """Close at once."""
        self.channel.close()


def is_permission_error(reply: Reply) -> bool:
    """Whether a 5xx reply says "not allowed" rather than "not found"."""
    text = reply.text.lower()
    return reply.code in (532, 533, 534) or any(
        word in text for word in ("permission", "privilege", "denied", "not allowed", "forbidden")
    )


def _absent_or_raise(command: str, reply: Reply) -> None:
    """Accept "550 not found"; raise for anything else (a permission error included)."""
    if reply.code != 550 or is_permission_error(reply):
        raise FtpError(command, reply)
