"""Zero-copy relay of plaintext data connections on Linux: splice(2) through a pipe per direction.

The bytes go socket -> pipe -> socket inside the kernel; the event loop only wakes up when a
socket is readable or writable, and a fast sender's socket only once a pipeful is queued
(SO_RCVLOWAT), so a GiB costs a few hundred wakeups. TLS legs use the copying relay in
`pipe.py` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import os
import socket
import sys
from pathlib import Path

from kairos_ftp.pipe import DataEnd, RelayResult

AVAILABLE = sys.platform == "linux" and hasattr(os, "splice")
_FLAGS = getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)
_F_SETPIPE_SZ, _F_GETPIPE_SZ = 1031, 1032
_PIPE_SIZE = 1024 * 1024
"""Wanted pipe capacity (Linux's default pipe-max-size); a 4 MiB pipe measured slower."""
_BUDGET = 32 * 1024 * 1024
"""Bytes one direction moves per wakeup before it lets the event loop serve other sessions."""
_FAST_PIPES = 16
"""Pipefuls per tick above which a slowed flow is batched again."""
_TICK = 0.25
"""Longest wait between the relay's checks (idle timeout, batching): a slow sender's bytes wait
at most this long for a batch to fill."""


@functools.cache
def _pipe_max_size() -> int:
    """The largest pipe an unprivileged process may ask for (/proc/sys/fs/pipe-max-size)."""
    try:
        return int(Path("/proc/sys/fs/pipe-max-size").read_text())
    except (OSError, ValueError):
        return _PIPE_SIZE


def detach(end: DataEnd) -> socket.socket:
    """Take the socket away from its (paused, unwritten) transport: a duplicate we own."""
    assert end.transport is not None
    transport_socket = end.transport.get_extra_info("socket")
    sock = socket.socket(fileno=os.dup(transport_socket.fileno()))
    sock.setblocking(False)
    end.relay = None
    end.transport.abort()  # unregisters and closes the original descriptor only
    return sock


class _Direction:
    """One direction: source socket -> pipe -> destination socket."""

    def __init__(self, relay: SpliceRelay, source: socket.socket, target: socket.socket) -> None:
        self.relay = relay
        self.source = source.fileno()
        self.target = target.fileno()
        self.read_fd, self.write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.pipe_size = 65536
        """The pipe's capacity: the length of each read, and the batch of a fast sender."""
        with contextlib.suppress(OSError, ValueError):
            fcntl.fcntl(self.write_fd, _F_SETPIPE_SZ, min(_PIPE_SIZE, _pipe_max_size()))
        with contextlib.suppress(OSError):
            self.pipe_size = fcntl.fcntl(self.write_fd, _F_GETPIPE_SZ)
        self.in_pipe = 0
        self.moved = 0
        self.eof = False
        self.pending = b""
        """Bytes a transport had read before the relay took over; sent first."""
        self.reading = False
        self.writing = False
        self.batching = False
        self.stopped = False
        self.source_socket = source
        self._ticked = 0

    def batch(self, on: bool) -> None:
        """Wake up for the source once a pipeful is queued (or at EOF), or at once (SO_RCVLOWAT)."""
        with contextlib.suppress(OSError):
            self.source_socket.setsockopt(
                socket.SOL_SOCKET, socket.SO_RCVLOWAT, self.pipe_size if on else 1
            )
            self.batching = on

    def tick(self) -> None:
        """Batch a fast flow; a slow one (less than a batch since the last tick) wakes per byte."""
        moved, self._ticked = self.moved - self._ticked, self.moved
        if self.batching and moved < self.pipe_size:
            self.batch(False)  # the kernel signals readability at once if bytes are queued
        elif not self.batching and moved >= _FAST_PIPES * self.pipe_size:
            self.batch(True)

    def start(self, pending: bytes, eof: bool) -> None:
        self.pending = pending
        self.moved += len(pending)
        self.eof = eof
        self.pump()

    def pump(self) -> None:
        """Move bytes until a socket would block, then wait for that socket (and only it).

        Called when the source is readable or the target writable: the pipe is emptied into
        the target first, then refilled from the source, for as long as both go on.
        """
        budget = _BUDGET
        while True:
            if (self.in_pipe or self.pending) and not self._drain():
                return
            if self.eof:
                self._wait(readable=False, writable=False)
                self.relay.finished(self)
                return
            if budget <= 0:  # go on after the loop served others (a batch may not wake us)
                self._wait(readable=False, writable=False)
                self.relay.loop.call_soon(self._resume)
                return
            try:
                count = os.splice(self.source, self.write_fd, self.pipe_size, flags=_FLAGS)
            except BlockingIOError:
                self._wait(readable=True, writable=False)
                return
            except OSError as exc:
                self.relay.fail(self, exc)
                return
            if count == 0:
                self.eof = True
            self.in_pipe += count
            self.moved += count
            budget -= count

    def _resume(self) -> None:
        if not self.stopped:
            self.pump()

    def _drain(self) -> bool:
        """Move the pipe's bytes to the target; False when the target is full (or failed)."""
        try:
            while self.pending:
                sent = os.write(self.target, self.pending)
                self.pending = self.pending[sent:]
            while self.in_pipe:
                self.in_pipe -= os.splice(self.read_fd, self.target, self.in_pipe, flags=_FLAGS)
        except BlockingIOError:
            self._wait(readable=False, writable=True)
            return False
        except OSError as exc:
            self.relay.fail(self, exc)
            return False
        return True

    def _wait(self, readable: bool, writable: bool) -> None:
        """Register for exactly these events (an epoll change only when they differ)."""
        loop = self.relay.loop
        if readable != self.reading:
            if readable:
                loop.add_reader(self.source, self.pump)
            else:
                loop.remove_reader(self.source)
            self.reading = readable
        if writable != self.writing:
            if writable:
                loop.add_writer(self.target, self.pump)
            else:
                loop.remove_writer(self.target)
            self.writing = writable

    def stop(self) -> None:
        self.stopped = True
        self._wait(readable=False, writable=False)
        for fd in (self.read_fd, self.write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


class SpliceRelay:
    """Same contract as `DataRelay` (a `done` future, `abort`), without copying into Python."""

    def __init__(
        self, client: DataEnd, backend: DataEnd, upload: bool, idle_timeout: float
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.done: asyncio.Future[RelayResult] = self.loop.create_future()
        self.idle_timeout = idle_timeout
        pending = (b"".join(client.take_pending()), b"".join(backend.take_pending()))
        eofs = (client.eof, backend.eof)
        self.client = detach(client)
        self.backend = detach(backend)
        self.up = _Direction(self, self.client, self.backend)
        self.down = _Direction(self, self.backend, self.client)
        self.sender = self.up if upload else self.down
        self._start = (pending, eofs)
        self._failure = ""
        self._timer: asyncio.TimerHandle | None = None
        self._last = -1
        self._last_change = self.loop.time()

    def counts(self) -> tuple[int, int]:
        """Bytes relayed so far: (from the client, from the backend)."""
        return self.up.moved, self.down.moved

    def start(self) -> None:
        """Let data flow."""
        (up_pending, down_pending), (client_eof, backend_eof) = self._start
        receiver = self.down if self.sender is self.up else self.up
        receiver.start(up_pending if receiver is self.up else down_pending, False)
        if not self.done.done():
            self.sender.batch(True)
            self.sender.start(
                up_pending if self.sender is self.up else down_pending,
                client_eof if self.sender is self.up else backend_eof,
            )
        self._schedule()

    def _schedule(self) -> None:
        if not self.done.done():
            interval = max(0.05, min(_TICK, self.idle_timeout / 4))
            self._timer = self.loop.call_later(interval, self._check_idle)

    def _check_idle(self) -> None:
        self.sender.tick()
        moved = self.up.moved + self.down.moved
        now = self.loop.time()
        if moved != self._last:
            self._last, self._last_change = moved, now
        elif now - self._last_change >= self.idle_timeout:
            self.abort(f"no data for {self.idle_timeout:g}s")
            return
        self._schedule()

    def finished(self, direction: _Direction) -> None:
        """A direction reached EOF with everything delivered."""
        if direction is not self.sender:
            direction.stop()  # the receiver half-closed: nothing more will come that way
            return
        with contextlib.suppress(OSError):
            (self.backend if direction is self.up else self.client).shutdown(socket.SHUT_WR)
        self._end()

    def fail(self, direction: _Direction, exc: OSError) -> None:
        """A socket error: the transfer is broken."""
        who = "client" if direction.source == self.client.fileno() else "backend"
        self.abort(f"{who} data connection failed: {exc}")

    def abort(self, reason: str) -> None:
        """Stop at once (ABOR, timeout, session end)."""
        if not self._failure:
            self._failure = reason
        self._end(reset=True)

    def _end(self, reset: bool = False) -> None:
        if self.done.done():
            return
        if self._timer is not None:
            self._timer.cancel()
        for direction in (self.up, self.down):
            direction.stop()
        for sock in (self.client, self.backend):
            if reset:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
            sock.close()
        ok = not self._failure
        self.done.set_result(RelayResult(ok, self.up.moved, self.down.moved, self._failure))
