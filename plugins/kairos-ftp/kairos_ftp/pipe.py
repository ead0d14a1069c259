"""Relay one data connection between two sockets with bounded buffers (flat memory at any size)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import cast


class DataEnd(asyncio.Protocol):
    """One socket of a data relay; reads nothing until it is paired with its peer."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: DataEnd | None = None
        self.relay: DataRelay | None = None
        self.received = 0
        self.eof = False
        self.upgrading = False
        """A TLS handshake runs: `transport` is about to be replaced, leave it alone."""
        self.lost: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
        self._pending: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Hold the data until the other end is connected too."""
        self.transport = cast(asyncio.Transport, transport)
        self.transport.pause_reading()

    def data_received(self, data: bytes) -> None:
        """Forward to the peer (or keep, while unpaired)."""
        self.received += len(data)
        peer = self.peer
        if peer is None or peer.transport is None:
            self._pending.append(data)  # at most one read's worth: reading pauses now
            if self.transport is not None and not self.upgrading:
                self.transport.pause_reading()
            return
        peer.transport.write(data)

    def eof_received(self) -> bool | None:
        """The sender is done: the relay flushes and closes the other side."""
        self.eof = True
        relay = self.relay
        if relay is not None and relay.sender is self:
            relay.finished_sending()
            return None
        if self.transport is not None and self.transport.get_extra_info("ssl_object"):
            return None  # TLS has no half-close: its close_notify ends the connection anyway
        return True  # a receiver's half-close (or one before pairing) ends nothing yet

    def connection_lost(self, exc: BaseException | None) -> None:
        """Tell the relay; an error here aborts the other side."""
        if not self.lost.done():
            self.lost.set_result(exc)
        if self.relay is not None:
            self.relay.end_lost(self, exc)

    def pause_writing(self) -> None:
        """Our outgoing buffer is full: stop reading from the peer."""
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        """Our outgoing buffer drained: read from the peer again."""
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()

    def take_pending(self) -> list[bytes]:
        """Data received before pairing, in order."""
        pending, self._pending = self._pending, []
        return pending

    def abort(self) -> None:
        """Drop the connection at once (a no-op once it is gone)."""
        # checked first: on 3.11 abort() after a flushed close() crashes inside asyncio
        if self.transport is not None and not self.lost.done():
            self.transport.abort()

    @property
    def closed(self) -> bool:
        """The connection is gone."""
        return self.lost.done()


@dataclass(frozen=True, slots=True)
class RelayResult:
    """How a relay ended: bytes each way and whether the sender's data arrived whole."""

    ok: bool
    client_bytes: int
    """Bytes the client sent (an upload)."""
    backend_bytes: int
    """Bytes the backend sent (a download or listing)."""
    reason: str = ""


class DataRelay:
    """Copies bytes both ways between a client end and a backend end until one side finishes."""

    def __init__(
        self,
        client: DataEnd,
        backend: DataEnd,
        upload: bool,
        idle_timeout: float,
        buffer_size: int,
    ) -> None:
        self.client = client
        self.backend = backend
        self.sender = client if upload else backend
        """The end whose EOF marks the end of the file."""
        self.idle_timeout = idle_timeout
        self.buffer_size = buffer_size
        self._loop = asyncio.get_running_loop()
        self.done: asyncio.Future[RelayResult] = self._loop.create_future()
        self._failure = ""
        self._sent = False
        self._timer: asyncio.TimerHandle | None = None
        self._last_total = -1
        self._last_progress = self._loop.time()

    def start(self) -> None:
        """Pair the ends and let data flow."""
        client, backend = self.client, self.backend
        client.peer, backend.peer = backend, client
        client.relay = backend.relay = self
        for end in (client, backend):
            assert end.transport is not None
            end.transport.set_write_buffer_limits(high=self.buffer_size)
        for end in (client, backend):
            assert end.peer is not None
            assert end.peer.transport is not None
            for chunk in end.take_pending():
                end.peer.transport.write(chunk)
        for end in (client, backend):
            if end.closed:
                self.end_lost(end, end.lost.result())
            elif not self.done.done() and end.transport is not None:
                end.transport.resume_reading()
        if self.sender.eof and not self._sent:
            self.finished_sending()
        self._schedule()

    def counts(self) -> tuple[int, int]:
        """Bytes relayed so far: (from the client, from the backend)."""
        return self.client.received, self.backend.received

    def _schedule(self) -> None:
        if not self.done.done():
            self._timer = self._loop.call_later(
                max(0.05, min(1.0, self.idle_timeout / 4)), self._check_idle
            )

    def _check_idle(self) -> None:
        total = self.client.received + self.backend.received
        now = self._loop.time()
        if total != self._last_total:
            self._last_total, self._last_progress = total, now
        elif now - self._last_progress >= self.idle_timeout:
            self.abort(f"no data for {self.idle_timeout:g}s")
            return
        self._schedule()

    def finished_sending(self) -> None:
        """The sender reached EOF: flush what it sent to the receiver, then close both."""
        self._sent = True
        for end in (self.sender.peer, self.sender):
            if end is not None and end.transport is not None:
                end.transport.close()  # a close flushes the write buffer first

    def end_lost(self, end: DataEnd, exc: BaseException | None) -> None:
        """A socket closed; an error, or a close before the sender's EOF, aborts the relay."""
        who = "client" if end is self.client else "backend"
        if not self._failure:
            if exc is not None:
                self._failure = f"{who} data connection failed: {exc}"
            elif not self._sent:
                self._failure = f"{who} closed the data connection before the transfer ended"
        other = end.peer
        if self._failure and other is not None and not other.closed:
            other.abort()
        if self.client.closed and self.backend.closed:
            self._finish()

    def abort(self, reason: str) -> None:
        """Stop the transfer (ABOR, timeout, session end): drop both sockets."""
        if not self._failure:
            self._failure = reason
        self.client.abort()
        self.backend.abort()

    def _finish(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if not self.done.done():
            ok = not self._failure and self._sent
            self.done.set_result(
                RelayResult(
                    ok,
                    self.client.received,
                    self.backend.received,
                    self._failure or ("" if ok else "no data connection"),
                )
            )
