"""WebSocket proxying through a real gateway to real aiohttp WebSocket backends."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import aiohttp
from aiohttp import WSMsgType
from core_ws_backend import WsBackendState, ws_app


def ws_route(*urls: str, **websocket: Any) -> dict[str, Any]:
    return {
        "routes": [
            {
                "name": "chat",
                "prefix": "/ws",
                "upstream": {"backends": [{"url": u} for u in urls]},
                "websocket": websocket,
            }
        ]
    }


async def start(backend_factory, name: str = "ws") -> tuple[Any, WsBackendState]:
    state = WsBackendState(name=name)
    return await backend_factory(ws_app(state)), state


async def test_messages_both_ways_in_order(kairos_gateway, backend_factory, http) -> None:
    backend, state = await start(backend_factory)
    gw = await kairos_gateway(ws_route(backend.url))
    async with http.ws_connect(
        gw.url + "/ws/room?user=ann", headers={"Origin": "https://app.test"}, max_msg_size=0
    ) as socket:
        for number in range(200):
            await socket.send_str(f"message {number}")
        for number in range(200):
            assert await socket.receive_str(timeout=5) == f"message {number}"
        payload = os.urandom(16 * 1024 * 1024)
        await socket.send_bytes(payload)
        assert await socket.receive_bytes(timeout=20) == payload
        await socket.send_str("héllo ✓")
        assert await socket.receive_str(timeout=5) == "héllo ✓"
    assert state.paths == ["/ws/room?user=ann"]
    assert state.headers[0]["Origin"] == "https://app.test"
    assert state.headers[0]["X-Forwarded-For"] == "127.0.0.1"


async def test_subprotocol_and_compression_are_negotiated(
    kairos_gateway, backend_factory, http
) -> None:
    backend, _ = await start(backend_factory)
    gw = await kairos_gateway(ws_route(backend.url))
    async with http.ws_connect(
        gw.url + "/ws", protocols=("chat.v1", "other"), compress=15
    ) as socket:
        assert socket.protocol == "chat.v1"
        assert socket.compress == 15
        await socket.send_str("x" * 10000)
        assert await socket.receive_str(timeout=5) == "x" * 10000
    async with http.ws_connect(gw.url + "/ws", protocols=("unknown",)) as socket:
        assert socket.protocol is None
    gw2 = await kairos_gateway(ws_route(backend.url, compression=False))
    async with http.ws_connect(gw2.url + "/ws", compress=15) as socket:
        assert socket.compress == 0  # cleanly declined


async def test_ping_pong_is_relayed(kairos_gateway, backend_factory, http) -> None:
    backend, _ = await start(backend_factory)
    gw = await kairos_gateway(ws_route(backend.url))
    async with http.ws_connect(gw.url + "/ws", autoping=False) as socket:
        await socket.ping(b"are-you-there")
        message = await socket.receive(timeout=5)
        assert message.type == WSMsgType.PONG
        assert message.data == b"are-you-there"


async def test_close_codes_travel_both_ways(kairos_gateway, backend_factory, http) -> None:
    backend, state = await start(backend_factory)
    gw = await kairos_gateway(ws_route(backend.url))
    socket = await http.ws_connect(gw.url + "/ws")
    await socket.close(code=4001, message=b"bye now")
    await asyncio.sleep(0.2)
    assert state.close_codes[-1] == 4001
    async with http.ws_connect(gw.url + "/ws") as socket:
        await socket.send_str("close:4002:server done")
        message = await socket.receive(timeout=5)
        assert message.type == WSMsgType.CLOSE
        assert message.data == 4002
        assert message.extra == "server done"


async def test_limits_close_with_the_right_codes(kairos_gateway, backend_factory, http) -> None:
    backend, _ = await start(backend_factory)
    gw = await kairos_gateway(ws_route(backend.url, max_message_size=1024, idle_timeout=0.3))
    async with http.ws_connect(gw.url + "/ws") as socket:
        await socket.send_bytes(b"x" * 5000)
        message = await socket.receive(timeout=5)
        assert message.type == WSMsgType.CLOSE
        assert message.data == 1009
    async with http.ws_connect(gw.url + "/ws") as socket:
        message = await socket.receive(timeout=5)
        assert message.type == WSMsgType.CLOSE
        assert message.data == 1001  # idle
    # The limit on a gateway without the short idle timeout: `first` must stay open throughout.
    limited = await kairos_gateway(ws_route(backend.url, max_connections=2))
    first = await http.ws_connect(limited.url + "/ws")
    second = await http.ws_connect(limited.url + "/ws")
    async with http.ws_connect(limited.url + "/ws") as third:
        message = await third.receive(timeout=5)
        assert message.type == WSMsgType.CLOSE
        assert message.data == 1013
    await first.send_str("still fine")
    assert await first.receive_str(timeout=5) == "still fine"
    await first.close()
    await second.close()


async def test_backend_disappearing_closes_the_client_promptly(
    kairos_gateway, backend_factory, http
) -> None:
    backend, state = await start(backend_factory)
    gw = await kairos_gateway(ws_route(backend.url))
    async with http.ws_connect(gw.url + "/ws") as socket:
        await socket.send_str("hello")
        assert await socket.receive_str(timeout=5) == "hello"
        state.sockets[-1]._writer.transport.abort()  # the backend process dies: no close frame
        message = await socket.receive(timeout=3)
        assert message.type == WSMsgType.CLOSE
        assert message.data in (1011, 1014)


async def test_client_disappearing_closes_the_backend_side(kairos_gateway, backend_factory) -> None:
    backend, state = await start(backend_factory)
    gw = await kairos_gateway(ws_route(backend.url))
    for _ in range(20):
        session = aiohttp.ClientSession()
        socket = await session.ws_connect(gw.url + "/ws")
        await socket.send_str("x")
        await socket.receive_str(timeout=5)
        socket._response.connection.transport.abort()  # abrupt: no close frame
        await session.close()
    for _ in range(50):
        if state.open == 0:
            break
        await asyncio.sleep(0.05)
    assert state.open == 0
    assert state.connections == 20


async def test_auth_and_balancing_apply_to_upgrades(kairos_gateway, backend_factory, http) -> None:
    from kairos_core import StagePlugin, error_response, hookimpl

    class OnlyWithTicket:
        @hookimpl
        def register_filters(self, register):
            async def check(ctx, call_next):
                if ctx.request.query.get("ticket") != "ok":
                    return error_response(403, "forbidden", "no ticket", ctx.request_id)
                return await call_next(ctx)

            register(StagePlugin(name="ticket", build=lambda c, b: check))

    a, _a_state = await start(backend_factory, "a")
    b, _b_state = await start(backend_factory, "b")
    config = ws_route(a.url, b.url)
    config["routes"][0]["plugins"] = [{"name": "ticket"}]
    gw = await kairos_gateway(config, plugins=[OnlyWithTicket()])
    async with http.get(
        gw.url + "/ws", headers={"Upgrade": "websocket", "Connection": "Upgrade"}
    ) as response:
        assert response.status == 403
    names = []
    for _ in range(4):
        async with http.ws_connect(gw.url + "/ws?ticket=ok") as socket:
            await socket.send_str("whoami")
            names.append(await socket.receive_str(timeout=5))
    assert sorted(names) == ["a", "a", "b", "b"]
    pool = gw.gateway.runtime.pools["route:chat"]
    pool.backends[0].set_healthy(False)
    async with http.ws_connect(gw.url + "/ws?ticket=ok") as socket:
        await socket.send_str("whoami")
        assert await socket.receive_str(timeout=5) == "b"
        assert pool.backends[1].in_flight == 1  # counted for least-connections balancing
    async with asyncio.timeout(5):  # released once the gateway has seen the close
        while pool.backends[1].in_flight:
            await asyncio.sleep(0.01)


async def test_two_hundred_concurrent_connections(kairos_gateway, backend_factory, http) -> None:
    backend, state = await start(backend_factory)
    gw = await kairos_gateway(ws_route(backend.url))

    async def chat(number: int) -> None:
        async with http.ws_connect(gw.url + "/ws") as socket:
            for index in range(5):
                await socket.send_str(f"{number}-{index}")
                assert await socket.receive_str(timeout=10) == f"{number}-{index}"

    await asyncio.gather(*(chat(n) for n in range(200)))
    assert state.connections == 200


async def test_a_thousand_abrupt_drops_leak_nothing(kairos_gateway, backend_factory) -> None:
    backend, state = await start(backend_factory)
    gw = await kairos_gateway(ws_route(backend.url))
    proxy = gw.gateway.runtime.routes[0].websocket
    assert proxy is not None
    tasks_before = len(asyncio.all_tasks())

    async def drop() -> None:
        host, port = gw.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")
        writer.transport.abort()

    for _batch in range(10):
        await asyncio.gather(*(drop() for _ in range(100)))
    for _ in range(100):
        if proxy.open == 0 and state.open == 0:
            break
        await asyncio.sleep(0.05)
    assert proxy.open == 0
    assert state.open == 0
    assert state.connections == 1000
    assert len(asyncio.all_tasks()) <= tasks_before + 5
    pool = gw.gateway.runtime.pools["route:chat"]
    assert pool.backends[0].in_flight == 0
