"""The response half of an upstream connection: httptools' callbacks build head and body.

HEAD responses stop the parser after the head (llhttp cannot be told that no body follows);
interim 1xx responses are skipped; trailer fields after a chunked body are parsed and dropped.
"""

from __future__ import annotations

from collections import deque

from httptools import HttpParserError, HttpResponseParser
from multidict import CIMultiDict

from kairos_core.forwarding import end_to_end_fields
from kairos_core.upstream.client import UpstreamError


class _HeadOnly(Exception):
    """Raised from the parser callback to stop after the head of a response to HEAD."""


class ResponseParsing:
    """Parser state of the response in progress; subclasses react to its events."""

    def __init__(self) -> None:
        self._parser = HttpResponseParser(self)
        self._head_only = False
        self._interim = False
        self.reset_response()

    def reset_response(self) -> None:
        """Forget the previous exchange's response."""
        self.status = 0
        self.reason = b""
        self.raw_headers: list[tuple[str, str]] = []
        self.head_done = False
        self.complete = False
        self.keep_alive = False
        self.got_bytes = False
        """Whether any response byte arrived in the current exchange."""
        self.error: UpstreamError | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0

    def feed(self, data: bytes) -> str | None:
        """Parse received bytes; the parser's complaint if they are not valid HTTP."""
        try:
            self._parser.feed_data(data)
        except HttpParserError as exc:
            if isinstance(exc.__context__, _HeadOnly):
                self._parser = HttpResponseParser(self)
                self._finish_message()
                return None
            return str(exc) or type(exc).__name__
        return None

    def headers(self) -> CIMultiDict[str]:
        """The final response's headers, in order, duplicates kept."""
        return CIMultiDict(self.raw_headers)

    def end_to_end_headers(self) -> CIMultiDict[str]:
        """The final response's headers minus the connection-specific ones (in order)."""
        return end_to_end_fields(self.raw_headers)

    def delimited_by_close(self) -> bool:
        """The body runs until the connection closes (no Content-Length, not chunked)."""
        for name, value in self.raw_headers:
            lower = name.lower()
            if lower == "content-length":
                return False
            if lower == "transfer-encoding" and value.rsplit(",", 1)[-1].strip().lower() == (
                "chunked"
            ):
                return False
        return True

    # -- httptools callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        """A response (possibly an interim 1xx) starts."""
        if self.complete:
            raise HttpParserError("data after the end of the response")
        self.raw_headers = []
        self.reason = b""

    def on_status(self, status: bytes) -> None:
        """The reason phrase (may arrive in pieces)."""
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        """One header field; trailer fields after a chunked body are dropped."""
        if not self.head_done:
            self.raw_headers.append(
                (name.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape"))
            )

    def on_headers_complete(self) -> None:
        """The head is in: skip interim responses, report the final one."""
        status = self._parser.get_status_code()
        if status < 200:
            if status == 101:
                raise HttpParserError("unexpected 101 Switching Protocols")
            self._interim = True
            return
        self.status = status
        self.head_done = True
        self.keep_alive = self._parser.should_keep_alive()
        self._head_arrived()
        if self._head_only:
            raise _HeadOnly

    def on_body(self, body: bytes) -> None:
        """Queue a body chunk."""
        self.chunks.append(body)
        self.buffered += len(body)
        self._body_arrived()

    def on_message_complete(self) -> None:
        """The response ended (an interim one just lets the final one follow)."""
        if self._interim:
            self._interim = False
            return
        self._finish_message()

    # -- events for the connection ---------------------------------------------------------

    def _head_arrived(self) -> None:
        raise NotImplementedError

    def _body_arrived(self) -> None:
        raise NotImplementedError

    def _finish_message(self) -> None:
        raise NotImplementedError
