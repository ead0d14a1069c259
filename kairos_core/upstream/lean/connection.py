"""One upstream HTTP/1.1 connection: an asyncio.Protocol feeding httptools' response parser.

The connection carries one exchange at a time (no pipelining). The parser callbacks
(`response.py`) collect the response head and body chunks; the sending coroutine and the body
iterator wait on a single future that every event resolves. Timers are `loop.call_at` handles
that check the time of the last activity when they fire, so no timer is re-armed per chunk,
and the idle timer of one exchange is left to lapse and serve the next one on the same
connection.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from kairos_core.upstream.client import UpstreamError
from kairos_core.upstream.lean.response import ResponseParsing

if TYPE_CHECKING:
    from collections.abc import Callable

ConnectionKey = tuple[str, int, bool]
"""(resolved address, port, TLS) that a connection was opened to."""

READ_PAUSE_AT = 256 * 1024
"""Buffered response bytes at which reading from the backend pauses (the client is slow)."""

IDLE, BUSY, CLOSED = 0, 1, 2


class UpstreamConnection(ResponseParsing, asyncio.Protocol):
    """A keep-alive connection to one backend address and the state of its current exchange."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        key: ConnectionKey,
        backend_name: str,
        on_lost: Callable[[UpstreamConnection, bool], None],
    ) -> None:
        self.loop = loop
        self.key = key
        self.backend_name = backend_name
        self.state = BUSY
        self.reused = False
        """Whether an earlier exchange completed on this connection."""
        self.idle_deadline = 0.0
        self.transport: asyncio.Transport | None = None
        self._on_lost = on_lost
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._read_timeout = 0.0
        self._last_activity = 0.0
        self._write_paused = False
        self._read_paused = False
        ResponseParsing.__init__(self)

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Remember the transport."""
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        """Feed the parser; bytes arriving while idle mean the backend misbehaves: close."""
        if self.state != BUSY or self.complete:
            self.keep_alive = False  # bytes beyond the response: never reuse this connection
            if self.state == IDLE and self.transport is not None:
                self.transport.close()  # connection_lost takes it off the idle stack
            return
        self.got_bytes = True
        self._last_activity = self.loop.time()
        problem = self.feed(data)
        if problem is not None:
            if self._ended():
                self.keep_alive = False  # bytes beyond the response: never reuse this connection
                return
            self._fail("protocol", f"invalid response from {self.backend_name}: {problem}")
            self.close()

    def eof_received(self) -> bool | None:
        """The backend finished sending: close our side too (HTTP/1.1 has no half-close)."""
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        """End the exchange: a close-delimited body completes; anything else is cut short."""
        previous = self.state
        self.state = CLOSED
        self._cancel_timers()
        self._on_lost(self, previous == IDLE)
        if previous == IDLE:
            return
        if self.complete or self.error is not None:
            self._wake()
            return
        if self.head_done and exc is None and self.delimited_by_close():
            self.keep_alive = False
            self._finish_message()
            return
        reason = f": {exc}" if exc else ""
        if self.head_done:
            self._fail("reset", f"{self.backend_name} closed the connection mid-body{reason}")
        else:
            self._fail("reset", f"{self.backend_name} closed the connection{reason}")

    def pause_writing(self) -> None:
        """The transport's write buffer passed its high-water mark."""
        self._write_paused = True

    def resume_writing(self) -> None:
        """The write buffer drained: let the body sender continue."""
        self._write_paused = False
        self._last_activity = self.loop.time()
        self._wake()

    # -- parser events ----------------------------------------------------------------------

    def _head_arrived(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._wake()

    def _body_arrived(self) -> None:
        """Pause reading while the consumer lags far behind."""
        if self.buffered > READ_PAUSE_AT and not self._read_paused and self.transport is not None:
            self._read_paused = True
            self.transport.pause_reading()
        self._wake()

    # -- the exchange ----------------------------------------------------------------------

    def begin(self, head_only: bool, read_timeout: float, total: float | None) -> bool:
        """Start an exchange: reset state and arm the idle timer (and the head deadline).

        False when the connection closed before anything was written (use another one).
        """
        if self.state == CLOSED or self.transport is None or self.transport.is_closing():
            return False
        self.state = BUSY
        if self.reused:
            self.reset_response()
        self._head_only = head_only
        self._read_timeout = read_timeout
        now = self.loop.time()
        self._last_activity = now
        due = now + read_timeout
        timer = self._timer  # a timer left by the previous exchange serves this one too
        if timer is None or timer.when() > due:
            if timer is not None:
                timer.cancel()
            self._timer = self.loop.call_at(due, self._check_idle)
        if total is not None:
            self._deadline = self.loop.call_at(now + total, self._head_late)
        return True

    def write(self, data: bytes) -> None:
        """Write request bytes (counts as activity for the idle timer)."""
        assert self.transport is not None
        self.transport.write(data)

    def write_chunk(self, chunk: bytes, chunked: bool) -> None:
        """Write one piece of a streamed request body."""
        assert self.transport is not None
        self._last_activity = self.loop.time()
        if chunked:
            self.transport.writelines((b"%x\r\n" % len(chunk), chunk, b"\r\n"))
        else:
            self.transport.write(chunk)

    @property
    def write_paused(self) -> bool:
        """Whether the transport's write buffer is above its high-water mark."""
        return self._write_paused

    @property
    def writable(self) -> bool:
        """Whether more request bytes may be sent (no answer or failure yet)."""
        return self.state == BUSY and self.error is None and not self.head_done

    async def drain(self) -> None:
        """Wait while the write buffer is above its high-water mark (or the exchange ended)."""
        while self._write_paused and self.writable:
            await self.wait()

    def wait(self) -> asyncio.Future[None]:
        """The future the exchange's next event resolves (head, body, end, error, drain): awaited
        as is, without a coroutine around it."""
        waiter = self._waiter = self.loop.create_future()
        return waiter

    def take_chunk(self) -> bytes:
        """Pop every buffered body byte as one chunk; resume reading once drained enough."""
        chunks = self.chunks
        chunk = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self.buffered = 0
        if self._read_paused and self.transport is not None:
            self._read_paused = False
            self._last_activity = self.loop.time()
            self.transport.resume_reading()
        return chunk

    def reusable(self) -> bool:
        """Whether the exchange ended cleanly and both sides allow another one."""
        return self.complete and self.keep_alive and self.state == BUSY

    def close(self) -> None:
        """Close the connection (pending exchanges end with `reset`)."""
        if self.state == IDLE:
            self.state = CLOSED
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Drop the connection at once (an exchange that cannot finish cleanly)."""
        if self.state == IDLE:
            self.state = CLOSED
        self._cancel_timers()
        if self.transport is not None:
            self.transport.abort()

    def fail(self, kind: str, message: str) -> None:
        """End the exchange with an error and drop the connection."""
        self._fail(kind, message)
        self.abort()

    # -- internals -------------------------------------------------------------------------

    def _ended(self) -> bool:
        """Whether the response is complete (a parser callback may have just completed it)."""
        return self.complete

    def _finish_message(self) -> None:
        self.complete = True
        self.reused = True
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if self._read_paused and self.transport is not None and self.state == BUSY:
            self._read_paused = False
            self.transport.resume_reading()
        self._wake()

    def _fail(self, kind: str, message: str) -> None:
        if self.error is None and not self.complete:
            self.error = UpstreamError(kind, message, sent=True)
        self._cancel_timers()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():  # cancelled when its awaiter was
                waiter.set_result(None)

    def _cancel_timers(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _check_idle(self) -> None:
        self._timer = None
        if self.complete or self.error is not None or self.state != BUSY:
            return  # no exchange running: the next one re-arms the timer
        now = self.loop.time()
        due = self._last_activity + self._read_timeout
        if self._read_paused:
            due = now + self._read_timeout  # our client is slow, not the backend
        if due > now:
            self._timer = self.loop.call_at(due, self._check_idle)
            return
        what = "sending the rest of the response" if self.head_done else "answering"
        self.fail("timeout", f"{self.backend_name} stopped {what} for {self._read_timeout:g}s")

    def _head_late(self) -> None:
        self._deadline = None
        if not self.head_done and self.error is None:
            self.fail("timeout", f"{self.backend_name} did not answer in time")
