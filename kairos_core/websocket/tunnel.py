"""After the handshake: bytes flow both ways untouched; frame headers are read for accounting."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from kairos_core.websocket.frames import FrameScanner, close_frame

log = logging.getLogger("kairos.websocket")

GOING_AWAY, MESSAGE_TOO_BIG, BAD_GATEWAY = 1001, 1009, 1014
_HIGH_WATER = 1024 * 1024


class Side(asyncio.Protocol):
    """One connection of a tunnel (the client's, or the backend's)."""

    def __init__(self, tunnel: Tunnel, name: str, scanner: FrameScanner) -> None:
        self.tunnel = tunnel
        self.name = name
        self.scanner = scanner
        self.transport: asyncio.Transport | None = None
        self.peer: Side | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Remember the transport; keep its write buffer small for back-pressure."""
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio's classes
        self.transport.set_write_buffer_limits(high=_HIGH_WATER)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        """Forward what the other side may receive; stop at a message over the limit."""
        tunnel = self.tunnel
        tunnel.active = True
        scanner = self.scanner
        allowed = scanner.feed(data)
        peer = self.peer
        if peer is not None and peer.transport is not None and allowed:
            peer.transport.write(data if allowed == len(data) else data[:allowed])
        if scanner.too_big:
            tunnel.too_big(self)
        elif scanner.closed and peer is not None and peer.scanner.closed:
            tunnel.finish()

    def pause_writing(self) -> None:
        """Our write buffer is full: stop reading from the other side."""
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        """Our write buffer drained: read from the other side again."""
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        """This side went away; the tunnel decides what the other side hears."""
        self.lost = True
        self.tunnel.side_lost(self)


class Tunnel:
    """Joins a client and a backend connection; ends when both are closed."""

    def __init__(self, max_message: int, idle_timeout: float) -> None:
        self.client = Side(self, "client", FrameScanner(max_message))
        self.backend = Side(self, "backend", FrameScanner(max_message))
        self.client.peer, self.backend.peer = self.backend, self.client
        self.idle_timeout = idle_timeout
        self.active = False
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.outcome = "closed"
        self._idle: asyncio.TimerHandle | None = None
        self.on_end: Callable[[Tunnel], None] | None = None

    def start(self) -> None:
        """Start the idle timer (both transports are attached)."""
        self._idle = asyncio.get_running_loop().call_later(self.idle_timeout, self._check_idle)

    def _check_idle(self) -> None:
        if self.done.done():
            return
        if not self.active:
            log.debug("websocket idle for %.0fs: closing", self.idle_timeout)
            self.outcome = "idle"
            self._send_close(self.client, GOING_AWAY, b"idle timeout")
            self._send_close(self.backend, GOING_AWAY, b"idle timeout")
            self.finish()
            return
        self.active = False
        self._idle = asyncio.get_running_loop().call_later(self.idle_timeout, self._check_idle)

    def _send_close(self, side: Side, code: int, reason: bytes) -> None:
        """Send a close frame to `side` unless it has already been told (or is gone)."""
        if side.transport is None or side.lost or side.peer is None or side.peer.scanner.closed:
            return
        side.transport.write(close_frame(code, reason, masked=side is self.backend))
        side.peer.scanner.closed = True

    def too_big(self, offender: Side) -> None:
        """A message over the limit: 1009 to the sender, the other side is told we go away."""
        self.outcome = "too_big"
        self._send_close(offender, MESSAGE_TOO_BIG, b"message too big")
        assert offender.peer is not None
        self._send_close(
            offender.peer,
            MESSAGE_TOO_BIG if offender is self.client else GOING_AWAY,
            b"message too big",
        )
        self.finish()

    def side_lost(self, side: Side) -> None:
        """One TCP connection ended: tell the other side, then end the tunnel."""
        if self.done.done():
            return
        if side is self.backend and not side.scanner.closed:
            self.outcome = "lost"
            self._send_close(self.client, BAD_GATEWAY, b"upstream went away")
        elif side is self.client and not side.scanner.closed:
            self._send_close(self.backend, GOING_AWAY, b"client went away")
        self.finish()

    def finish(self) -> None:
        """Close both connections (after their buffered writes) and wake the handler."""
        if self._idle is not None:
            self._idle.cancel()
        for side in (self.client, self.backend):
            if side.transport is not None and not side.transport.is_closing():
                side.transport.close()
        if not self.done.done():
            self.done.set_result(None)
