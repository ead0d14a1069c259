"""PROXY protocol v1/v2 (HAProxy) in front of the HTTP handler, with or without TLS after it."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import ssl
import struct
from asyncio import sslproto
from collections.abc import Callable
from typing import TYPE_CHECKING

from kairos_core.forwarding import TrustedProxies
from kairos_core.server.protocol import KairosRequestHandler

if TYPE_CHECKING:
    from kairos_core.server.lean_protocol import LeanHttpProtocol

log = logging.getLogger("kairos.server")

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
_V1_MAX = 107
_HEADER_TIMEOUT = 5.0


class ProxyHeaderError(ValueError):
    """A connection did not start with a valid PROXY protocol header."""


def parse_proxy_header(data: bytes) -> tuple[str | None, int] | None:
    """Parse a PROXY header at the start of `data`.

    Returns (source address or None for LOCAL/UNKNOWN, header length), or None when more bytes
    are needed; raises ProxyHeaderError when the bytes cannot be a PROXY header.
    """
    if data.startswith(V2_SIGNATURE[: len(data)]) and len(data) < 16:
        return None
    if data.startswith(V2_SIGNATURE):
        return _parse_v2(data)
    if b"PROXY "[: len(data)] == data[:6] and len(data) < 6:
        return None
    if data.startswith(b"PROXY "):
        end = data.find(b"\r\n")
        if end < 0:
            if len(data) > _V1_MAX:
                raise ProxyHeaderError("PROXY v1 header too long")
            return None
        return _parse_v1(data[:end].decode("ascii", "replace")), end + 2
    raise ProxyHeaderError("connection did not start with a PROXY protocol header")


def _parse_v1(line: str) -> str | None:
    parts = line.split(" ")
    if len(parts) >= 2 and parts[1] == "UNKNOWN":
        return None
    if len(parts) != 6 or parts[1] not in ("TCP4", "TCP6"):
        raise ProxyHeaderError(f"invalid PROXY v1 header: {line[:60]!r}")
    try:
        source = ipaddress.ip_address(parts[2])
        ipaddress.ip_address(parts[3])
        ports = int(parts[4]), int(parts[5])
    except ValueError:
        raise ProxyHeaderError(f"invalid PROXY v1 addresses: {line[:60]!r}") from None
    if not all(0 <= p <= 65535 for p in ports):
        raise ProxyHeaderError("invalid PROXY v1 port")
    if (source.version == 4) != (parts[1] == "TCP4"):
        raise ProxyHeaderError("PROXY v1 address family mismatch")
    return str(source)


def _parse_v2(data: bytes) -> tuple[str | None, int] | None:
    version_command, family, length = struct.unpack("!BBH", data[12:16])
    if version_command >> 4 != 2:
        raise ProxyHeaderError("unsupported PROXY protocol version")
    total = 16 + length
    if len(data) < total:
        return None
    command = version_command & 0x0F
    if command == 0:  # LOCAL: health check from the proxy itself
        return None, total
    if command != 1:
        raise ProxyHeaderError("unknown PROXY v2 command")
    body = data[16:total]
    if family == 0x11 and length >= 12:
        return str(ipaddress.IPv4Address(body[:4])), total
    if family == 0x21 and length >= 36:
        return str(ipaddress.IPv6Address(body[:16])), total
    if family >> 4 == 0:  # UNSPEC
        return None, total
    raise ProxyHeaderError("unsupported PROXY v2 address family")


class ProxyProtocolReader(asyncio.Protocol):
    """Reads the PROXY header, then hands the connection (and any TLS) to the HTTP handler."""

    def __init__(
        self,
        handler_factory: Callable[[], KairosRequestHandler | LeanHttpProtocol],
        ssl_context: ssl.SSLContext | None,
        trusted: TrustedProxies,
    ) -> None:
        self._handler_factory = handler_factory
        self._ssl_context = ssl_context
        self._trusted = trusted
        self._buffer = b""
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start the header deadline; refuse untrusted peers when trusted proxies are set."""
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        address = peer[0] if isinstance(peer, tuple) else ""
        if self._trusted and address not in self._trusted:
            log.warning("PROXY protocol connection from untrusted %s refused", address)
            transport.abort()
            return
        self._timer = asyncio.get_running_loop().call_later(_HEADER_TIMEOUT, transport.abort)

    def data_received(self, data: bytes) -> None:
        """Accumulate until the header is complete, then switch protocols."""
        transport = self._transport
        assert transport is not None
        self._buffer += data
        try:
            parsed = parse_proxy_header(self._buffer)
        except ProxyHeaderError as exc:
            log.warning("dropping connection: %s", exc)
            self._cancel_timer()
            transport.abort()
            return
        if parsed is None:
            return
        self._cancel_timer()
        source, length = parsed
        rest = self._buffer[length:]
        self._buffer = b""
        handler = self._handler_factory()
        if source is not None:
            handler.client_peer = source
        if self._ssl_context is None:
            transport.set_protocol(handler)
            handler.connection_made(transport)
            if rest:
                handler.data_received(rest)
            return
        loop = asyncio.get_running_loop()
        handshake = loop.create_future()
        handshake.add_done_callback(_ignore_handshake_failure)
        tls = sslproto.SSLProtocol(
            loop,
            handler,
            self._ssl_context,
            waiter=handshake,
            server_side=True,
            call_connection_made=True,
        )
        transport.set_protocol(tls)
        tls.connection_made(transport)
        if rest:
            _feed_buffered(tls, rest)

    def connection_lost(self, exc: Exception | None) -> None:
        """The client left before sending a complete header."""
        self._cancel_timer()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _ignore_handshake_failure(future: asyncio.Future[None]) -> None:
    """A failed TLS handshake only closes that connection; asyncio already logged it."""
    if not future.cancelled():
        future.exception()


def _feed_buffered(protocol: asyncio.BufferedProtocol, data: bytes) -> None:
    view = memoryview(data)
    while view:
        buffer = memoryview(protocol.get_buffer(len(view)))
        size = min(len(buffer), len(view))
        buffer[:size] = view[:size]
        protocol.buffer_updated(size)
        view = view[size:]
