"""A backend for the soak: echo, streamed and cacheable bodies, a WebSocket echo, a health probe.

    python bench/soak_backend.py PORT NAME

Every HTTP answer names the backend (`X-Backend`) so the load can tell which one served it.
SIGUSR1 starts draining: /health answers 503 from then on, everything else is still served.
SIGTERM is a graceful stop: the listener closes, open WebSockets are closed with 1001 (going
away) and running requests may finish for up to 10 s.
"""

from __future__ import annotations

import asyncio
import hashlib
import signal
import sys
import weakref

from aiohttp import WSCloseCode, web

CHUNK = 16 * 1024


def pattern(seed: int, size: int) -> bytes:
    """`size` deterministic bytes for `seed`: what /stream sends and the load verifies."""
    block = hashlib.sha256(str(seed).encode()).digest() * (CHUNK // 32)
    whole, rest = divmod(size, CHUNK)
    return block * whole + block[:rest]


def build(name: str) -> web.Application:
    """The soak backend's application, answering as `name`."""
    sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
    headers = {"X-Backend": name}
    draining = asyncio.Event()

    async def health(request: web.Request) -> web.Response:
        if draining.is_set():
            return web.Response(status=503, text="draining", headers=headers)
        return web.Response(text="ok", headers=headers)

    async def item(request: web.Request) -> web.Response:
        seen = {k.lower(): v for k, v in request.headers.items() if k.lower().startswith("x-")}
        body = {"backend": name, "path": request.path, "query": request.query_string}
        return web.json_response({**body, "headers": seen}, headers=headers)

    async def echo(request: web.Request) -> web.Response:
        data = await request.read()
        digest = hashlib.sha256(data).hexdigest()
        return web.Response(body=data, headers={**headers, "X-Body-SHA256": digest})

    async def stream(request: web.Request) -> web.StreamResponse:
        size = int(request.query.get("size", "262144"))
        seed = int(request.query.get("seed", "0"))
        body = pattern(seed, size)
        response = web.StreamResponse(headers=headers)
        response.content_type = "application/octet-stream"
        await response.prepare(request)
        for start in range(0, size, CHUNK):
            await response.write(body[start : start + CHUNK])
        await response.write_eof()
        return response

    async def cached(request: web.Request) -> web.Response:
        key = request.match_info["key"]
        return web.json_response(
            {"key": key, "backend": name},
            headers={**headers, "Cache-Control": "public, max-age=30"},
        )

    async def websocket(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        sockets.add(socket)
        await socket.send_str(f"hello from {name}")
        async for message in socket:
            await socket.send_str(message.data)
        return socket

    async def going_away(app: web.Application) -> None:
        for socket in list(sockets):
            await socket.close(code=WSCloseCode.GOING_AWAY, message=b"backend stopping")

    async def drain_on_signal(app: web.Application) -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, draining.set)

    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.on_startup.append(drain_on_signal)
    app.router.add_get("/health", health)
    app.router.add_get("/ws", websocket)
    app.router.add_get("/stream", stream)
    app.router.add_get("/cached/{key}", cached)
    app.router.add_post("/echo", echo)
    app.router.add_get("/{tail:.*}", item)
    app.on_shutdown.append(going_away)
    return app


def main() -> None:
    """Serve on 127.0.0.1:PORT as NAME until SIGTERM."""
    port, name = int(sys.argv[1]), sys.argv[2]
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    web.run_app(
        build(name),
        host="127.0.0.1",
        port=port,
        print=None,
        access_log=None,
        shutdown_timeout=10,
    )


if __name__ == "__main__":
    main()
