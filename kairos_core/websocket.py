"""WebSocket proxying: upgrade on the route, connect to a balanced backend, relay frame by frame."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web
from multidict import CIMultiDict
from yarl import URL

from kairos_core.config.models import WebSocketConfig
from kairos_core.context import RequestContext
from kairos_core.response import Response, error_response
from kairos_core.upstream.pool import (
    BROKEN,
    CONNECT_ERROR,
    Backend,
    NoBackendAvailable,
    UpstreamPool,
)

if TYPE_CHECKING:
    from kairos_core.metrics import CounterChild, GaugeChild

log = logging.getLogger("kairos.websocket")

BAD_GATEWAY = 1014
_CLOSE_TIMEOUT = 5.0
TRY_AGAIN_LATER = 1013
_DROP = frozenset(
    {
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
    }
)


def is_upgrade(ctx: RequestContext) -> bool:
    """A WebSocket handshake (GET with `Upgrade: websocket`)."""
    headers = ctx.request.headers
    return ctx.request.method == "GET" and headers.get("Upgrade", "").lower() == "websocket"


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


class WebSocketProxy:
    """Relays WebSocket connections of one route to its pool; counts and limits them."""

    def __init__(self, config: WebSocketConfig, stats: WebSocketStats | None) -> None:
        self.config = config
        self.stats = stats
        self.open = 0
        self.max_message = int(config.max_message_size)
        # aiohttp also counts compressed frame bytes, which may exceed the message size a little:
        # give it some slack and enforce the exact limit in the pump.
        self._limit = self.max_message + self.max_message // 64 + 4096

    async def handle(
        self, ctx: RequestContext, pool: UpstreamPool, host_header: str | None
    ) -> Response:
        """Proxy one upgrade request; returns once both sides are closed."""
        try:
            backend = pool.choose(ctx)
        except NoBackendAvailable as exc:
            return error_response(503, "no_backend_available", str(exc), ctx.request_id)
        headers: CIMultiDict[str] = CIMultiDict(
            (k, v) for k, v in ctx.headers.items() if k.lower() not in _DROP
        )
        headers["Host"] = host_header or backend.host_header
        offered = [
            p.strip()
            for p in ctx.request.headers.get("Sec-WebSocket-Protocol", "").split(",")
            if p.strip()
        ]
        session = pool.websocket_session()
        backend.attempt()
        try:
            upstream = await session.ws_connect(
                URL(backend.url + ctx.upstream_target, encoded=True),
                headers=headers,
                protocols=offered,
                autoclose=False,
                autoping=False,
                compress=15 if self.config.compression else 0,
                max_msg_size=self._limit,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0),
                server_hostname=pool.config.tls.server_name,
            )
        except aiohttp.WSServerHandshakeError as exc:
            backend.report(exc.status)
            backend.release()
            return error_response(
                502,
                "upstream_handshake",
                f"{backend.name} refused the WebSocket upgrade ({exc.status})",
                ctx.request_id,
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            backend.report(CONNECT_ERROR)
            backend.release()
            return error_response(
                502,
                "upstream_connect",
                f"cannot open a WebSocket to {backend.name}: {exc}",
                ctx.request_id,
            )
        backend.report(101)
        client = web.WebSocketResponse(
            protocols=[upstream.protocol] if upstream.protocol else (),
            autoclose=False,
            autoping=False,
            compress=self.config.compression,
            max_msg_size=self._limit,
            decode_text=False,
        )
        try:
            await client.prepare(ctx.request)
            if self.config.max_connections and self.open >= self.config.max_connections:
                await client.close(
                    code=TRY_AGAIN_LATER, message=b"too many connections on this route"
                )
                return Response.prepared(client)
            await self._relay(client, upstream, backend)
        finally:
            await upstream.close()
            backend.release()
        return Response.prepared(client)

    async def _relay(
        self,
        client: web.WebSocketResponse,
        upstream: aiohttp.ClientWebSocketResponse,
        backend: Backend,
    ) -> None:
        self.open += 1
        stats = self.stats
        if stats is not None:
            stats.open.value += 1
        idle = self.config.idle_timeout
        activity = asyncio.Event()
        handshake: list[bool] = []  # non-empty once one side's close was passed on to the other
        outbound = asyncio.create_task(
            self._pump(upstream, client, activity, handshake, inbound=False)
        )
        tasks = {
            asyncio.create_task(self._pump(client, upstream, activity, handshake, inbound=True)),
            outbound,
        }
        try:
            while True:
                done, pending = await asyncio.wait(
                    tasks, timeout=idle, return_when=asyncio.FIRST_COMPLETED
                )
                if done:
                    if pending:  # the other direction is finishing the close handshake
                        await asyncio.wait(pending, timeout=_CLOSE_TIMEOUT)
                    break
                if not activity.is_set():
                    await _close_both(client, upstream, WSCloseCode.GOING_AWAY, b"idle timeout")
                    break
                activity.clear()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self.open -= 1
            if stats is not None:
                stats.open.value -= 1
        if not client.closed:
            await client.close(code=BAD_GATEWAY, message=b"upstream went away")
        if outbound.done() and not outbound.cancelled() and outbound.result() == "lost":
            backend.report(BROKEN)  # the backend dropped the connection: its breaker should know

    async def _pump(
        self,
        source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
        target: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
        activity: asyncio.Event,
        handshake: list[bool],
        inbound: bool,
    ) -> str:
        """Copy frames from `source` to `target` until one side closes; says how it ended."""
        stats = self.stats
        while True:
            message = await source.receive()
            activity.set()
            kind = message.type
            if kind in (WSMsgType.TEXT, WSMsgType.BINARY):
                data = message.data if isinstance(message.data, bytes) else message.data.encode()
                if len(data) > self.max_message:
                    await _close(source, WSCloseCode.MESSAGE_TOO_BIG, b"message too big")
                    await _close(target, WSCloseCode.GOING_AWAY, b"peer sent a message too big")
                    return "too_big"
                if stats is not None:
                    (stats.messages_in if inbound else stats.messages_out).value += 1
                    (stats.bytes_in if inbound else stats.bytes_out).value += len(data)
                await target.send_frame(data, kind)
            elif kind == WSMsgType.PING:
                await target.ping(message.data)
            elif kind == WSMsgType.PONG:
                await target.pong(message.data)
            elif kind == WSMsgType.CLOSE:
                code = message.data if isinstance(message.data, int) else WSCloseCode.OK
                reason = (message.extra or "").encode()
                if not handshake:
                    # This side starts closing: pass the close frame on as it came, and keep the
                    # other direction running so messages already in flight still arrive; the
                    # other side's close reply then comes back through the other pump.
                    handshake.append(True)
                    with contextlib.suppress(Exception):
                        await target.send_frame(_close_payload(code, reason), WSMsgType.CLOSE)
                    return "closing"
                # This is the reply to a close we passed on: answer the side that started.
                await _close(target, code, reason)
                await _close(source, code, reason)
                return "closed"
            elif kind == WSMsgType.CLOSING:
                return "closing"  # the other direction is closing this side: nothing more to copy
            elif kind == WSMsgType.ERROR and isinstance(message.data, Exception):
                error = message.data
                code = getattr(error, "code", None)
                if code == WSCloseCode.MESSAGE_TOO_BIG:
                    await _close(source, WSCloseCode.MESSAGE_TOO_BIG, b"message too big")
                    await _close(target, WSCloseCode.GOING_AWAY, b"peer sent a message too big")
                    return "too_big"
                await _close(target, WSCloseCode.GOING_AWAY if inbound else BAD_GATEWAY, b"")
                await _close(source, WSCloseCode.PROTOCOL_ERROR, b"")
                return "error"
            else:  # CLOSED: the peer's connection ended without a close handshake
                await _close(target, WSCloseCode.GOING_AWAY if inbound else BAD_GATEWAY, b"")
                return "lost"


async def _close(
    socket: web.WebSocketResponse | aiohttp.ClientWebSocketResponse, code: int, reason: bytes
) -> None:
    """Send a close frame (if the socket is still open); never raises."""
    with contextlib.suppress(Exception):
        await socket.close(code=_sendable(code), message=reason)


async def _close_both(
    client: web.WebSocketResponse,
    upstream: aiohttp.ClientWebSocketResponse,
    code: int,
    reason: bytes,
) -> None:
    await _close(client, code, reason)
    await _close(upstream, code, reason)


def _close_payload(code: int, reason: bytes) -> bytes:
    """A close frame's payload: empty for "no status" (1005), else the code and reason."""
    if code < 1000 or code in (1005, 1006, 1015):
        return b""
    return code.to_bytes(2, "big") + reason


def _sendable(code: int) -> int:
    """Codes 1005 and 1006 may not be sent in a close frame: say normal closure instead."""
    return WSCloseCode.OK if code < 1000 or code in (1005, 1006, 1015) else code
