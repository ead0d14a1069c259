"""A WebSocket echo backend for tests: echoes, reports, and closes on command."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import WSMsgType, web


@dataclass
class WsBackendState:
    """What the backend saw."""

    name: str = "ws"
    connections: int = 0
    open: int = 0
    close_codes: list[int | None] = field(default_factory=list)
    close_reasons: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    sockets: list[web.WebSocketResponse] = field(default_factory=list)


def ws_app(state: WsBackendState) -> web.Application:
    """Echo every message; `close:CODE:REASON` closes with that code; `whoami` answers the name."""

    async def handler(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(
            protocols=("chat.v2", "chat.v1"), max_msg_size=64 * 1024 * 1024
        )
        await socket.prepare(request)
        state.connections += 1
        state.open += 1
        state.paths.append(request.path_qs)
        state.headers.append(dict(request.headers))
        state.sockets.append(socket)
        try:
            async for message in socket:
                if message.type == WSMsgType.TEXT:
                    if message.data.startswith("close:"):
                        _, code, reason = message.data.split(":", 2)
                        await socket.close(code=int(code), message=reason.encode())
                        break
                    if message.data == "whoami":
                        await socket.send_str(state.name)
                        continue
                    await socket.send_str(message.data)
                elif message.type == WSMsgType.BINARY:
                    await socket.send_bytes(message.data)
        finally:
            state.open -= 1
            state.close_codes.append(socket.close_code)
            state.close_reasons.append(str(getattr(socket, "_close_message", "") or ""))
        return socket

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    return app
