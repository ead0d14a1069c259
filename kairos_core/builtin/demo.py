"""A small demo backend served in-process, so the embedded default config does something useful."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from kairos_core.config.models import ListenerConfig
from kairos_core.hookspecs import hookimpl
from kairos_core.plugin_api import GatewayServices, ProtocolPlugin

ITEMS = {
    "1": {"id": 1, "name": "espresso", "price": 2.2},
    "2": {"id": 2, "name": "cappuccino", "price": 3.1},
    "3": {"id": 3, "name": "flat white", "price": 3.4},
}


class DemoConfig(BaseModel):
    """Settings of the demo backend."""

    model_config = ConfigDict(extra="forbid")
    greeting: str = Field("Hello from the Kairos demo backend!", description="Text of /hello.")


def demo_app(config: DemoConfig) -> web.Application:
    """The demo backend's aiohttp application."""

    async def index(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "service": "kairos demo backend",
                "message": "This answer came through the Kairos gateway.",
                "endpoints": [
                    "/hello",
                    "/items",
                    "/items/{id}",
                    "/echo",
                    "/stream",
                    "/status/{code}",
                ],
            }
        )

    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"message": config.greeting})

    async def items(request: web.Request) -> web.Response:
        return web.json_response(list(ITEMS.values()))

    async def item(request: web.Request) -> web.Response:
        found = ITEMS.get(request.match_info["id"])
        if found is None:
            return web.json_response({"error": "no such item"}, status=404)
        return web.json_response(found)

    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "headers": dict(request.headers),
                "body": body.decode("utf-8", "replace"),
            }
        )

    async def stream(request: web.Request) -> web.StreamResponse:
        count = min(int(request.query.get("count", "5")), 100)
        interval = min(float(request.query.get("interval", "0.2")), 5.0)
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        for number in range(count):
            await response.write(f"id: {number}\ndata: {json.dumps({'tick': number})}\n\n".encode())
            await asyncio.sleep(interval)
        await response.write_eof()
        return response

    async def status(request: web.Request) -> web.Response:
        code = int(request.match_info["code"])
        if not 200 <= code <= 599:
            raise web.HTTPBadRequest(text="status must be 200..599")
        return web.json_response({"status": code}, status=code)

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/hello", hello)
    app.router.add_get("/items", items)
    app.router.add_get("/items/{id}", item)
    app.router.add_route("*", "/echo", echo)
    app.router.add_route("*", "/echo/{tail:.*}", echo)
    app.router.add_get("/stream", stream)
    app.router.add_get("/status/{code:\\d+}", status)
    app.router.add_get("/health", health)
    return app


class RunningDemo:
    """The demo backend listening on its address."""

    def __init__(self, runner: web.AppRunner) -> None:
        self._runner = runner

    async def close(self) -> None:
        """Stop the demo backend."""
        await self._runner.cleanup()


async def start_demo(
    listener: ListenerConfig, config: DemoConfig, services: GatewayServices
) -> RunningDemo:
    """Serve the demo backend on the listener's address."""
    runner = web.AppRunner(demo_app(config), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, listener.host, listener.port, reuse_address=True)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    return RunningDemo(runner)


@hookimpl
def register_protocol_handlers(register: Any) -> None:
    """Register the `demo` listener protocol."""
    register(
        ProtocolPlugin(
            name="demo",
            start=start_demo,
            config_model=DemoConfig,
            description="An in-process demo backend for trying the gateway.",
        )
    )
