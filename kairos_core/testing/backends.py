"""Real aiohttp backends on loopback for tests: an echo server and any app you give."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

RECORDS_KEY = web.AppKey("kairos_echo_records", list)


@dataclass
class EchoRecord:
    """One request as the echo backend received it."""

    method: str
    path: str
    raw_path: str
    headers: dict[str, str]
    header_list: list[tuple[str, str]]
    body: bytes
    peer: str


@dataclass
class Backend:
    """A started backend: its base URL and, for the echo app, what it received."""

    url: str
    port: int
    app: web.Application
    runner: web.AppRunner
    records: list[EchoRecord] = field(default_factory=list)

    async def stop(self) -> None:
        """Stop serving and close connections."""
        await self.runner.cleanup()


def echo_app(name: str = "echo") -> web.Application:
    """A backend that answers every request with JSON describing it, and records it."""
    records: list[EchoRecord] = []

    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        peer = request.transport.get_extra_info("peername") if request.transport else None
        record = EchoRecord(
            method=request.method,
            path=request.path,
            raw_path=request.raw_path,
            headers=dict(request.headers),
            header_list=list(request.headers.items()),
            body=body,
            peer=peer[0] if peer else "",
        )
        records.append(record)
        status = int(request.headers.get("X-Echo-Status", "200"))
        return web.json_response(
            {
                "backend": name,
                "method": record.method,
                "path": record.path,
                "raw_path": record.raw_path,
                "headers": record.headers,
                "body": body.decode("utf-8", "replace"),
                "body_length": len(body),
            },
            status=status,
            headers={"X-Backend": name},
        )

    app = web.Application(client_max_size=1024**3)
    app[RECORDS_KEY] = records
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


@asynccontextmanager
async def start_backend(
    app: web.Application, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[Backend]:
    """Serve `app` on a free loopback port for the duration of the block."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server  # the bound asyncio server: read the port the OS chose
    sockets = getattr(server, "sockets", None)
    assert sockets, "backend did not bind"
    bound = sockets[0].getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    backend = Backend(f"http://{shown}:{bound}", bound, app, runner, app.get(RECORDS_KEY, []))
    try:
        yield backend
    finally:
        await runner.cleanup()
