"""Misbehaving backends for resilience tests: resetting, hanging, status-switching."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class RawBackend:
    """A TCP server that reads one request head per connection and then misbehaves."""

    mode: str = "reset"
    """`reset`: close abruptly after reading the request; `hang`: never answer."""
    received: list[bytes] = field(default_factory=list)
    server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        self.received.append(head)
        if self.mode == "hang":
            await asyncio.sleep(30)
        writer.transport.abort()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aenter__(self) -> RawBackend:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for transport in list(getattr(self.server, "_transports", [])):
            transport.abort()


def status_app(name: str, state: dict[str, int]) -> web.Application:
    """Answers with `state['status']` (and `state['health']` on /health); counts requests."""

    async def handle(request: web.Request) -> web.Response:
        if request.path == "/health":
            state["probes"] = state.get("probes", 0) + 1
            return web.Response(status=state.get("health", 200), text="health")
        state["hits"] = state.get("hits", 0) + 1
        await request.read()
        return web.json_response(
            {"backend": name}, status=state.get("status", 200), headers={"X-Backend": name}
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def closed_port_url() -> str:
    """A URL nothing listens on (connection refused)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
