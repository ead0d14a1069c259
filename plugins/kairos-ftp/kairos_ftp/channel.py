"""The FTP control channel: CRLF lines, commands, and (multi-line) replies on asyncio streams."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass

MAX_LINE = 8192
"""Longest command or reply line accepted (RFC 959 sets no limit; this bounds memory)."""

_IAC = 0xFF


class ChannelClosed(ConnectionError):
    """The peer closed the control connection."""


class LineTooLong(ValueError):
    """A command or reply line exceeded MAX_LINE."""


class ProtocolError(ValueError):
    """The peer sent something that is not an FTP reply."""


@dataclass(frozen=True, slots=True)
class Reply:
    """One (possibly multi-line) reply: its code and the raw lines, CRLF-terminated."""

    code: int
    lines: tuple[bytes, ...]

    @property
    def raw(self) -> bytes:
        """The reply exactly as received."""
        return b"".join(self.lines)

    @property
    def text(self) -> str:
        """The text after the code, lines joined, for messages and parsing."""
        parts = []
        for index, line in enumerate(self.lines):
            body = line.rstrip(b"\r\n")
            if index == 0 or (body[:3] == self.lines[0][:3] and body[3:4] in (b" ", b"-")):
                body = body[4:]
            parts.append(body.decode("utf-8", "replace"))
        return "\n".join(parts)

    @property
    def preliminary(self) -> bool:
        """A 1xx reply: the final one is still to come."""
        return self.code < 200

    @property
    def ok(self) -> bool:
        """A 2xx or 3xx reply."""
        return 200 <= self.code < 400


@dataclass(frozen=True, slots=True)
class Command:
    """One client command: the verb (upper case) and the raw argument bytes."""

    verb: str
    arg: bytes
    line: bytes

    @property
    def text(self) -> str:
        """The argument decoded for inspection (UTF-8, lossless via surrogates)."""
        return self.arg.decode("utf-8", "surrogateescape")


def make_reply(code: int, text: str) -> bytes:
    """Encode a gateway-made reply; several lines become an RFC 959 multi-line reply."""
    lines = text.split("\n")
    if len(lines) == 1:
        return f"{code} {text}\r\n".encode()
    body = [f"{code}-{lines[0]}"] + [f" {line}" for line in lines[1:-1]] + [f"{code} {lines[-1]}"]
    return ("\r\n".join(body) + "\r\n").encode()


def strip_telnet(line: bytes) -> bytes:
    """Remove Telnet IAC sequences (IP, DM, option negotiation) clients send around ABOR."""
    if _IAC not in line:
        return line
    out = bytearray()
    index = 0
    while index < len(line):
        byte = line[index]
        if byte != _IAC:
            out.append(byte)
            index += 1
            continue
        following = line[index + 1] if index + 1 < len(line) else None
        if following == _IAC:
            out.append(_IAC)
            index += 2
        elif following is not None and 0xFB <= following <= 0xFE:
            index += 3  # WILL/WONT/DO/DONT + option
        else:
            index += 2
    return bytes(out)


def parse_command(raw: bytes) -> Command:
    """Split a command line into verb and argument (Telnet sequences removed)."""
    line = strip_telnet(raw.rstrip(b"\r\n"))
    verb, _, arg = line.partition(b" ")
    return Command(verb.decode("ascii", "replace").upper(), arg, line)


class ControlChannel:
    """One side of a control connection; not safe for concurrent readers."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.tls = False

    @property
    def peer_ip(self) -> str:
        """The remote IP address."""
        peer = self.writer.get_extra_info("peername")
        return str(peer[0]) if peer else ""

    @property
    def local_ip(self) -> str:
        """The local IP address the connection uses."""
        local = self.writer.get_extra_info("sockname")
        return str(local[0]) if local else ""

    async def read_line(self) -> bytes:
        """The next CRLF (or LF) terminated line; raise ChannelClosed at EOF."""
        try:
            line = await self.reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            raise ChannelClosed("connection closed") from exc
        except asyncio.LimitOverrunError as exc:
            raise LineTooLong(f"line longer than {MAX_LINE} bytes") from exc
        except ssl.SSLError as exc:
            raise ChannelClosed(f"TLS error: {exc}") from exc
        if len(line) > MAX_LINE:
            raise LineTooLong(f"line longer than {MAX_LINE} bytes")
        return line

    async def read_command(self) -> Command:
        """The next client command."""
        return parse_command(await self.read_line())

    async def read_reply(self) -> Reply:
        """The next reply, all lines of a multi-line one."""
        first = await self.read_line()
        if len(first) < 4 or not first[:3].isdigit() or first[3:4] not in (b" ", b"-", b"\r"):
            raise ProtocolError(f"not an FTP reply: {first[:60]!r}")
        lines = [first]
        if first[3:4] == b"-":
            end = first[:3] + b" "
            while True:
                line = await self.read_line()
                lines.append(line)
                if line.startswith(end) or line.rstrip(b"\r\n") == first[:3]:
                    break
                if len(lines) > 10_000:
                    raise ProtocolError("multi-line reply too long")
        return Reply(int(first[:3]), tuple(lines))

    async def send(self, data: bytes) -> None:
        """Write raw bytes and wait until the buffer drains."""
        self.writer.write(data)
        await self.writer.drain()

    async def command(self, line: str | bytes) -> None:
        """Send one command line (CRLF appended)."""
        data = line.encode() if isinstance(line, str) else line
        await self.send(data + b"\r\n")

    async def reply(self, code: int, text: str) -> None:
        """Send a gateway-made reply."""
        await self.send(make_reply(code, text))

    async def start_tls(
        self, context: ssl.SSLContext, server_hostname: str | None = None, timeout: float = 10.0
    ) -> None:
        """Upgrade the connection in place (AUTH TLS)."""
        await self.writer.start_tls(
            context, server_hostname=server_hostname, ssl_handshake_timeout=timeout
        )
        self.tls = True

    def close(self) -> None:
        """Close without waiting."""
        with contextlib.suppress(Exception):
            self.writer.close()

    async def aclose(self, timeout: float = 2.0) -> None:
        """Close and wait (bounded) for the transport to go away."""
        self.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(timeout):
                await self.writer.wait_closed()
