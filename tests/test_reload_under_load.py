"""Hot reload under load: 50 clients, a long stream in flight, 20 visible reloads, 0 failures."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from aiohttp import web

from kairos_core.testing import GatewayProcess


def app() -> web.Application:
    async def echo_path(request: web.Request) -> web.Response:
        return web.Response(text=request.path)

    async def websocket(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        async for message in socket:
            await socket.send_str(message.data)
        return socket

    async def slow_stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for index in range(30):
            await response.write(b"chunk-%02d\n" % index)
            await asyncio.sleep(0.1)
        await response.write_eof()
        return response

    application = web.Application()
    application.router.add_get("/stream", slow_stream)
    application.router.add_get("/ws", websocket)
    application.router.add_get("/{tail:.*}", echo_path)
    return application


async def test_twenty_reloads_under_load_lose_nothing(backend_factory, tmp_path: Path) -> None:
    backend = await backend_factory(app())
    path = tmp_path / "gw.yaml"

    def write(version: int) -> None:
        path.write_text(
            "listeners: [{host: 127.0.0.1, port: 0}]\nadmin: {port: 0}\n"
            "observability: {access_log: {enabled: false}}\n"
            f"upstreams: {{svc: {{backends: [{{url: '{backend.url}'}}]}}}}\n"
            "routes:\n"
            f"  - {{name: versioned, path: /v, rewrite: /version-{version}, upstream: svc}}\n"
            "  - {name: stream, path: /stream, upstream: svc}\n"
            "  - {name: ws, path: /ws, upstream: svc}\n"
        )

    write(0)
    gateway = await GatewayProcess(["--config", str(path)]).start()
    failures: list[str] = []
    seen: set[str] = set()
    stop = asyncio.Event()
    try:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def client() -> int:
                count = 0
                while not stop.is_set():
                    try:
                        async with session.get(gateway.url + "/v") as response:
                            body = await response.text()
                            if response.status != 200:
                                failures.append(f"{response.status} {body[:80]}")
                            else:
                                seen.add(body)
                    except aiohttp.ClientError as exc:
                        failures.append(repr(exc))
                    count += 1
                return count

            async def long_stream() -> bytes:
                async with session.get(gateway.url + "/stream") as response:
                    return await response.read()

            stream_task = asyncio.create_task(long_stream())
            socket = await session.ws_connect(gateway.url + "/ws")
            await socket.send_str("before the reloads")
            assert await socket.receive_str(timeout=5) == "before the reloads"
            clients = [asyncio.create_task(client()) for _ in range(50)]
            for version in range(1, 21):
                write(version)
                async with session.post(gateway.admin_url + "/config/reload") as response:
                    assert (await response.json())["ok"] is True
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)
            stop.set()
            counts = await asyncio.gather(*clients)
            streamed = await stream_task
            await socket.send_str("after 20 reloads")
            assert (
                await socket.receive_str(timeout=5) == "after 20 reloads"
            )  # the WebSocket survived
            await socket.close()
    finally:
        await gateway.stop()
    assert failures == []
    assert sum(counts) > 200
    assert "/version-20" in seen and len(seen) > 5  # the route visibly changed along the way
    assert streamed == b"".join(
        b"chunk-%02d\n" % i for i in range(30)
    )  # finished on its old config
