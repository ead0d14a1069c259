"""Per-request state shared by the pipeline stages: the request, its route, identity and body."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from multidict import CIMultiDict

from kairos_core.body_stream import RequestBodyTooLarge, stream_all, stream_rest
from kairos_core.router import decode_params

log = logging.getLogger("kairos.context")

if TYPE_CHECKING:
    from kairos_core.pipeline import CompiledRoute
    from kairos_core.server.lean_request import IncomingRequest
    from kairos_core.upstream.pool import Backend


@dataclass(frozen=True, slots=True)
class Consumer:
    """An authenticated identity: a configured consumer or one an authenticator vouched for."""

    name: str
    metadata: Mapping[str, str] = field(default_factory=dict)
    configured: bool = True


class RequestContext:
    """Everything a stage may read or change about one request on its way upstream."""

    __slots__ = (
        "_body",
        "_body_prefix",
        "_cleanups",
        "_header_rules",
        "_headers",
        "_params",
        "backend",
        "body_failure",
        "body_started",
        "bytes_in",
        "claims",
        "client_ip",
        "consumer",
        "expect_continue",
        "host",
        "parent_span_id",
        "query_string",
        "raw_params",
        "request",
        "request_id",
        "retries",
        "route",
        "scheme",
        "span_id",
        "started",
        "state",
        "trace_id",
        "traceparent",
        "upstream_path",
        "upstream_seconds",
    )

    def __init__(
        self,
        request: IncomingRequest,
        route: CompiledRoute,
        raw_params: dict[str, str],
        request_id: str,
        client_ip: str,
        scheme: str,
        host: str,
        upstream_path: str,
        query_string: str,
        headers: CIMultiDict[str] | None,
        started: float,
        header_rules: Callable[[RequestContext], CIMultiDict[str]] | None = None,
    ) -> None:
        self.request = request
        self.route = route
        self.raw_params = raw_params
        self.request_id = request_id
        self.client_ip = client_ip
        self.scheme = scheme
        self.host = host
        self.upstream_path = upstream_path
        self.query_string = query_string
        self._headers = headers
        self._header_rules = header_rules
        """Builds `headers` from the request when they were not given (on first use)."""
        self.started = started
        self.consumer: Consumer | None = None
        self.claims: Mapping[str, Any] | None = None
        self.backend: Backend | None = None
        self.bytes_in = 0
        """Request body bytes read so far."""
        self.trace_id: str | None = None
        """W3C trace id of this request (continued from the client's, or new)."""
        self.span_id: str | None = None
        """The span id the gateway used for its hop (sent upstream in `traceparent`)."""
        self.parent_span_id: str | None = None
        """The client's span id, when it sent a `traceparent`."""
        self.traceparent: str | None = None
        """The `traceparent` sent upstream (with tracing on)."""
        self.upstream_seconds = 0.0
        """Time from sending the last attempt upstream to its response head."""
        self.retries = 0
        """Upstream attempts after the first."""
        self.expect_continue = False
        """The client waits for `100 Continue` before sending its body."""
        self.body_started = False
        """Some of the streamed body has been read (it can no longer be sent again)."""
        self.body_failure: BaseException | None = None
        """Why streaming the client's body upstream failed (too large, client timeout)."""
        self.state: dict[str, Any] = {}
        self._params: dict[str, str] | None = None
        self._body: bytes | None = None
        self._body_prefix = b""
        self._cleanups: list[Callable[[], Awaitable[None] | None]] | None = None

    @property
    def headers(self) -> CIMultiDict[str]:
        """The headers sent upstream; made from the request's when first asked for, so a
        request answered without going upstream (a cache hit, a refusal) never builds them."""
        headers = self._headers
        if headers is None:
            rules = self._header_rules
            headers = self._headers = rules(self) if rules is not None else CIMultiDict()
        return headers

    @headers.setter
    def headers(self, headers: CIMultiDict[str]) -> None:
        self._headers = headers

    @property
    def method(self) -> str:
        """The request method."""
        return self.request.method

    @property
    def path(self) -> str:
        """The request path as received (percent-encoded, no query)."""
        return self.request.raw_path.partition("?")[0]

    @property
    def params(self) -> dict[str, str]:
        """Path parameters, percent-decoded."""
        if self._params is None:
            self._params = decode_params(self.raw_params)
        return self._params

    @property
    def upstream_target(self) -> str:
        """The request-target sent upstream: rewritten path plus query string."""
        if self.query_string:
            return f"{self.upstream_path}?{self.query_string}"
        return self.upstream_path

    @property
    def body_buffered(self) -> bool:
        """True once a stage has read the whole body into memory."""
        return self._body is not None

    @property
    def body_replayable(self) -> bool:
        """Whether the body could be sent again (buffered, absent, or not yet read at all)."""
        return self._body is not None or not self.body_started

    def add_cleanup(self, callback: Callable[[], Awaitable[None] | None]) -> None:
        """Run `callback` when the request is finished, however it ends."""
        if self._cleanups is None:
            self._cleanups = []
        self._cleanups.append(callback)

    @property
    def has_cleanups(self) -> bool:
        """Whether a stage registered a cleanup (the server then awaits `run_cleanups`)."""
        return self._cleanups is not None

    async def run_cleanups(self) -> None:
        """Run the registered cleanups (the server calls this once per request); one that fails
        is logged and the others still run, as does the request's bookkeeping after them."""
        callbacks, self._cleanups = self._cleanups, None
        for callback in callbacks or ():
            try:
                result = callback()
                if result is not None:
                    await result
            except Exception:
                log.exception("request %s: a cleanup failed", self.request_id)

    @property
    def max_body_size(self) -> int:
        """The largest request body this route accepts."""
        return self.route.max_body_size

    async def read_body(self) -> bytes:
        """Read the whole request body into memory (bounded by the route's max body size)."""
        if self._body is not None:
            return self._body
        chunks = [self._body_prefix]
        async for chunk in stream_rest(self, len(self._body_prefix)):
            chunks.append(chunk)
        self._body = b"".join(chunks)
        self._body_prefix = b""
        return self._body

    def set_body(self, body: bytes) -> None:
        """Replace the request body sent upstream."""
        self._body = body
        self._body_prefix = b""
        self.headers.popall("Transfer-Encoding", None)
        self.headers["Content-Length"] = str(len(body))

    async def peek_body(self, size: int) -> bytes:
        """Return up to `size` leading body bytes without consuming them for the upstream."""
        if self._body is not None:
            return self._body[:size]
        content = self.request.content
        timeout = self.route.timeouts.read
        await self.send_continue()
        while len(self._body_prefix) < size and not content.at_eof():
            async with asyncio.timeout(timeout):
                chunk = await content.read(size - len(self._body_prefix))
            if not chunk:
                break
            self._body_prefix += chunk
            if len(self._body_prefix) > self.max_body_size:
                raise RequestBodyTooLarge(self.max_body_size)
        return self._body_prefix[:size]

    def has_body(self) -> bool:
        """True when there is a request body to send upstream."""
        if self._body is not None:
            return bool(self._body)
        return bool(self._body_prefix) or self.request.body_exists

    def body_for_upstream(self) -> bytes | AsyncIterator[bytes] | None:
        """The body to send: bytes if buffered, else a stream (peeked bytes first)."""
        if self._body is not None:
            return self._body
        if not self.request.body_exists and not self._body_prefix:
            return None
        return stream_all(self)

    @property
    def body_prefix(self) -> bytes:
        """Body bytes a stage peeked at, sent upstream before the rest."""
        return self._body_prefix

    async def send_continue(self) -> None:
        """Send `100 Continue` once, if the client waits for it before sending its body."""
        if self.expect_continue:
            self.expect_continue = False
            await self.request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
