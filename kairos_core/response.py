"""The response a pipeline stage returns: status, headers and a body that may still be streaming."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from multidict import CIMultiDict

if TYPE_CHECKING:
    from kairos_core.server.lean_request import IncomingRequest

Body = bytes | AsyncIterator[bytes]


class BodyTooLarge(Exception):
    """Raised by `Response.read` when the body exceeds the caller's limit."""


class Response:
    """What the chain returns; the server writes it out (streaming when `body` is an iterator)."""

    __slots__ = ("_on_close", "body", "close_connection", "headers", "reason", "sent", "status")

    def __init__(
        self,
        status: int = 200,
        headers: CIMultiDict[str] | None = None,
        body: Body = b"",
        reason: str | None = None,
    ) -> None:
        self.status = status
        self.headers: CIMultiDict[str] = headers if headers is not None else CIMultiDict()
        self.body = body
        self.reason = reason
        self.sent: Any = None
        """An aiohttp response already sent by a stage (a WebSocket upgrade), returned as is."""
        self._on_close: list[Callable[[], Awaitable[None] | None]] | None = None
        self.close_connection = False
        """Whether the client connection must close after this response (see `closing`)."""

    @classmethod
    def json(
        cls, data: Any, status: int = 200, headers: CIMultiDict[str] | None = None
    ) -> Response:
        """A JSON response."""
        out = headers if headers is not None else CIMultiDict()
        out["Content-Type"] = "application/json"
        return cls(status, out, json.dumps(data, separators=(",", ":")).encode())

    @classmethod
    def prepared(cls, sent: Any) -> Response:
        """Stand for an aiohttp response that has already been sent (for example a WebSocket)."""
        response = cls(101)
        response.sent = sent
        return response

    @property
    def streaming(self) -> bool:
        """True while the body is an iterator that has not been read."""
        return not isinstance(self.body, bytes)

    def on_close(self, callback: Callable[[], Awaitable[None] | None]) -> None:
        """Run `callback` once the body has been sent or abandoned."""
        if self._on_close is None:
            self._on_close = []
        self._on_close.append(callback)

    async def read(self, limit: int | None = None) -> bytes:
        """Buffer the whole body (at most `limit` bytes) and keep it as bytes."""
        if isinstance(self.body, bytes):
            return self.body
        chunks: list[bytes] = []
        size = 0
        failure: BaseException | None = None
        try:
            async for chunk in self.body:
                size += len(chunk)
                if limit is not None and size > limit:
                    raise BodyTooLarge(f"response body exceeds {limit} bytes")
                chunks.append(chunk)
        except BaseException as exc:  # not `finally` + `await`: see "Compiled hot path"
            failure = exc
        await self._close_iterator()
        if failure is not None:
            raise failure
        self.body = b"".join(chunks)
        self.headers.popall("Content-Length", None)
        return self.body

    async def close(self) -> None:
        """Release whatever backs the body (an upstream connection) and run close callbacks."""
        await self._close_iterator()
        pending = self._run_close_callbacks()
        if pending is not None:
            await pending

    def close_now(self) -> Awaitable[None] | None:
        """`close` without a coroutine when the body is bytes and the callbacks are plain
        functions (the usual proxied response); else the awaitable that finishes closing."""
        if not isinstance(self.body, bytes):
            return self.close()
        return self._run_close_callbacks()

    def _run_close_callbacks(self) -> Awaitable[None] | None:
        """Run the close callbacks in order; the first one that returns an awaitable hands it,
        with the callbacks after it, back to be awaited."""
        callbacks = self._on_close
        if callbacks is None:
            return None
        self._on_close = None
        for index, callback in enumerate(callbacks):
            result = callback()
            if result is not None:
                return _finish_callbacks(result, callbacks[index + 1 :])
        return None

    async def _close_iterator(self) -> None:
        body = self.body
        if not isinstance(body, bytes):
            aclose = getattr(body, "aclose", None)
            if aclose is not None:
                await aclose()


async def _finish_callbacks(
    pending: Awaitable[None], rest: list[Callable[[], Awaitable[None] | None]]
) -> None:
    """Await a close callback's result, then run the callbacks after it."""
    await pending
    for callback in rest:
        result = callback()
        if result is not None:
            await result


def closing(response: Response, request: IncomingRequest, *, drain: bool = False) -> Response:
    """Make `response` the last on its connection: closed once sent, or with `drain` after
    the server's lingering read of the unread body (so a client still uploading gets the answer
    rather than a reset)."""
    response.close_connection = True
    if not drain:
        response.on_close(request.protocol.force_close)
    return response


def error_response(
    status: int,
    error_type: str,
    message: str,
    request_id: str | None = None,
    headers: CIMultiDict[str] | None = None,
) -> Response:
    """The gateway's JSON error: `{"status", "type", "message", "request_id"}`."""
    return Response.json(
        {"status": status, "type": error_type, "message": message, "request_id": request_id},
        status,
        headers,
    )
