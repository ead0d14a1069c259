"""WebSocket proxying: the upgrade is negotiated with a balanced backend, then the two
connections are joined byte for byte (frames are read for limits and metrics, never rewritten),
so extensions, subprotocols, fragmentation and close codes travel end to end."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any, NamedTuple

from aiohttp import web

from kairos_core.config.models import WebSocketConfig
from kairos_core.context import RequestContext
from kairos_core.response import Response, error_response
from kairos_core.upstream.pool import (
    BROKEN,
    CONNECT_ERROR,
    TIMEOUT,
    Backend,
    NoBackendAvailable,
    UpstreamPool,
)
from kairos_core.websocket.frames import close_frame
from kairos_core.websocket.handshake import (
    MAX_HEAD,
    HandshakeError,
    accept_key,
    answer_headers,
    parse_head,
    upgrade_request,
)
from kairos_core.websocket.tunnel import Tunnel

if TYPE_CHECKING:
    from kairos_core.metrics import CounterChild, GaugeChild

log = logging.getLogger("kairos.websocket")

TRY_AGAIN_LATER = 1013


def is_upgrade(ctx: RequestContext) -> bool:
    """A WebSocket handshake (GET with `Upgrade: websocket`)."""
    return (
        ctx.request.method == "GET"
        and ctx.request.headers.get("Upgrade", "").lower() == "websocket"
    )


class WebSocketStats:
    """A route's WebSocket metrics (resolved at config load)."""

    __slots__ = ("bytes_in", "bytes_out", "messages_in", "messages_out", "open")

    def __init__(
        self,
        open_: GaugeChild,
        messages_in: CounterChild,
        messages_out: CounterChild,
        bytes_in: CounterChild,
        bytes_out: CounterChild,
    ) -> None:
        self.open = open_
        self.messages_in = messages_in
        self.messages_out = messages_out
        self.bytes_in = bytes_in
        self.bytes_out = bytes_out


class _HeadReader(asyncio.Protocol):
    """Collects the backend's handshake answer; the tunnel takes the connection over after it."""

    def __init__(self) -> None:
        self.buffer = b""
        self.head: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end >= 0 and not self.head.done():
            self.head.set_result(self.buffer[: end + 4])
        elif len(self.buffer) > MAX_HEAD and not self.head.done():
            self.head.set_exception(HandshakeError("response head too large"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.head.done():
            self.head.set_exception(
                HandshakeError("the backend closed the connection during the handshake")
            )


class _Unanswered(NamedTuple):
    """No handshake answer from a backend: the error for the client and what went wrong."""

    response: Response
    outcome: int


def _may_retry(ctx: RequestContext, outcome: int, attempts: int) -> bool:
    """Another backend may be tried under the route's retry policy (no backoff: it is another)."""
    policy = ctx.route.retry
    if policy is None or attempts > policy.max_retries or not policy.wants(outcome):
        return False
    if not policy.budget.try_spend():
        policy.budget_refusals += 1
        return False
    policy.retries_made += 1
    ctx.retries += 1
    if ctx.route.stats is not None:
        ctx.route.stats.retries.value += 1
    return True


class WebSocketProxy:
    """Proxies the WebSocket connections of one route to its pool; counts and limits them."""

    def __init__(self, config: WebSocketConfig, stats: WebSocketStats | None) -> None:
        self.config = config
        self.stats = stats
        self.open = 0
        self.max_message = int(config.max_message_size)

    async def handle(
        self, ctx: RequestContext, pool: UpstreamPool, host_header: str | None
    ) -> Response:
        """Proxy one upgrade request; returns once both connections are closed."""
        request = ctx.request
        assert isinstance(request, web.BaseRequest)  # the lean server hands upgrades to aiohttp
        key = request.headers.get("Sec-WebSocket-Key")
        if not key or request.headers.get("Sec-WebSocket-Version") != "13":
            return error_response(
                400,
                "bad_websocket_handshake",
                "Sec-WebSocket-Key and version 13 are required",
                ctx.request_id,
            )
        if self.config.max_connections and self.open >= self.config.max_connections:
            return await self._refuse(request, key)
        policy = ctx.route.retry
        if policy is not None:
            policy.budget.note_request()
        tried: list[Backend] = []
        while True:
            try:
                backend = pool.choose(ctx, tried)
            except NoBackendAvailable as exc:
                return error_response(503, "no_backend_available", str(exc), ctx.request_id)
            backend.attempt()
            try:
                result = await self._proxy(ctx, pool, backend, host_header or backend.host_header)
            finally:
                backend.release()
            if not isinstance(result, _Unanswered):
                return result
            tried.append(backend)
            if not _may_retry(ctx, result.outcome, len(tried)):
                return result.response

    async def _proxy(
        self, ctx: RequestContext, pool: UpstreamPool, backend: Backend, host: str
    ) -> Response | _Unanswered:
        loop = asyncio.get_running_loop()
        timeouts = ctx.route.timeouts
        reader = _HeadReader()
        try:
            async with asyncio.timeout(timeouts.connect):
                address = await pool.resolve(backend)
                transport, _ = await loop.create_connection(
                    lambda: reader,
                    address,
                    backend.port,
                    ssl=pool.tls_context(),
                    server_hostname=(pool.config.tls.server_name or backend.host)
                    if backend.scheme == "https"
                    else None,
                )
        except (OSError, TimeoutError) as exc:
            outcome = TIMEOUT if isinstance(exc, TimeoutError) else CONNECT_ERROR
            backend.report(outcome)
            kind = "upstream_timeout" if isinstance(exc, TimeoutError) else "upstream_connect"
            message = f"cannot open a WebSocket to {backend.name}: {exc}"
            status = 504 if kind == "upstream_timeout" else 502
            return _Unanswered(error_response(status, kind, message, ctx.request_id), outcome)
        try:
            transport.write(upgrade_request(ctx, host, self.config.compression))
            async with asyncio.timeout(timeouts.total or timeouts.read):
                head = await reader.head
            status, reason, headers = parse_head(head)
        except (HandshakeError, TimeoutError, OSError) as exc:
            transport.close()
            backend.report(BROKEN)
            message = f"{backend.name}: {exc or 'no answer'}"
            answer = error_response(502, "upstream_handshake", message, ctx.request_id)
            return _Unanswered(answer, TIMEOUT if isinstance(exc, TimeoutError) else BROKEN)
        backend.report(status)
        if status != 101:
            transport.close()
            return _passthrough(status, reason, headers, reader.buffer[len(head) :])
        return await self._join(ctx, transport, reader.buffer[len(head) :], headers, backend)

    async def _join(
        self,
        ctx: RequestContext,
        backend_transport: Any,
        early: bytes,
        headers: Any,
        backend: Backend,
    ) -> Response:
        request = ctx.request
        assert isinstance(request, web.BaseRequest)
        answer = web.StreamResponse(
            status=101, reason="Switching Protocols", headers=answer_headers(headers)
        )
        try:
            writer = await answer.prepare(request)
            _flush_head(writer)
        except ConnectionError:
            backend_transport.close()
            return Response.prepared(answer)
        tunnel = Tunnel(self.max_message, self.config.idle_timeout)
        client_transport = request.transport
        assert client_transport is not None
        client_transport.set_protocol(tunnel.client)
        tunnel.client.connection_made(client_transport)
        backend_transport.set_protocol(tunnel.backend)
        tunnel.backend.connection_made(backend_transport)
        if early:
            tunnel.backend.data_received(early)
        tunnel.start()
        self.open += 1
        stats = self.stats
        if stats is not None:
            stats.open.value += 1
        try:
            await tunnel.done
        finally:
            self.open -= 1
            if stats is not None:
                stats.open.value -= 1
                stats.messages_in.value += tunnel.client.scanner.messages
                stats.bytes_in.value += tunnel.client.scanner.bytes
                stats.messages_out.value += tunnel.backend.scanner.messages
                stats.bytes_out.value += tunnel.backend.scanner.bytes
            if tunnel.outcome == "lost":
                backend.report(
                    BROKEN
                )  # the backend dropped the connection: its breaker should know
            _release_client(request, answer)
        return Response.prepared(answer)

    async def _refuse(self, request: web.BaseRequest, key: str) -> Response:
        """Over the route's connection limit: accept, then close at once with 1013."""
        answer = web.StreamResponse(
            status=101,
            reason="Switching Protocols",
            headers={
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Accept": accept_key(key),
            },
        )
        with contextlib.suppress(ConnectionError):
            _flush_head(await answer.prepare(request))
            if request.transport is not None:
                request.transport.write(
                    close_frame(TRY_AGAIN_LATER, b"too many connections on this route")
                )
        answer.force_close()
        return Response.prepared(answer)


def _passthrough(status: int, reason: str, headers: Any, body: bytes) -> Response:
    """The backend refused the upgrade: give the client its answer (status, headers, body)."""
    from kairos_core.forwarding import response_headers

    out = response_headers(headers)
    length = out.get("Content-Length")
    if length is not None and length.isdigit():
        body = body[: int(length)]
    out.popall("Content-Length", None)
    return Response(status, out, body, reason or None)


def _flush_head(writer: Any) -> None:
    """aiohttp holds response headers back until body bytes follow: send the 101 head now,
    before the tunnel writes frames straight to the transport."""
    send_headers = getattr(writer, "send_headers", None)
    if send_headers is not None:
        send_headers()


def _release_client(request: web.BaseRequest, answer: web.StreamResponse) -> None:
    """Hand the (now closed) client connection back to aiohttp so it forgets it cleanly."""
    answer.force_close()
    protocol = request.protocol
    if protocol is not None:
        protocol.force_close()
        asyncio.get_running_loop().call_soon(protocol.connection_lost, None)
