"""WebSocket upgrades follow the route's retry policy when a backend gives no handshake answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from core_ws_backend import WsBackendState, ws_app

from kairos_core.testing.process import free_port

UPGRADES = 12


@asynccontextmanager
async def mute_backend() -> AsyncIterator[str]:
    """Accepts connections and closes them without answering (a backend dying mid-handshake)."""

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


def route(urls: list[str], retry: dict[str, Any] | None) -> dict[str, Any]:
    upstream = {
        "backends": [{"url": u} for u in urls],
        "health_check": {"passive": {"enabled": False}},
        "circuit_breaker": {"enabled": False},
    }
    entry: dict[str, Any] = {"name": "chat", "prefix": "/ws", "upstream": upstream}
    if retry is not None:
        entry["retry"] = retry
    return {"routes": [entry]}


async def upgrades(http: aiohttp.ClientSession, url: str) -> list[int]:
    """Status of each of UPGRADES upgrades: 101 once an echo came back, else the error."""
    statuses = []
    for number in range(UPGRADES):
        try:
            async with http.ws_connect(url) as socket:
                await socket.send_str(f"hi {number}")
                assert await socket.receive_str(timeout=5) == f"hi {number}"
                statuses.append(101)
        except aiohttp.WSServerHandshakeError as exc:
            statuses.append(exc.status)
    return statuses


async def test_refused_and_mute_backends_are_skipped(kairos_gateway, backend_factory, http) -> None:
    state = WsBackendState()
    good = await backend_factory(ws_app(state))
    dead = f"http://127.0.0.1:{free_port()}"
    async with mute_backend() as mute:
        urls = [dead, mute, good.url]
        plain = await kairos_gateway(route(urls, None))
        assert (await upgrades(http, plain.url + "/ws")).count(101) < UPGRADES
        retrying = await kairos_gateway(route(urls, {"max_retries": 2}))
        assert await upgrades(http, retrying.url + "/ws") == [101] * UPGRADES
    assert retrying.admin_url is not None
    async with http.get(retrying.admin_url + "/metrics") as response:
        text = await response.text()
    assert 'kairos_retries_total{route="chat"}' in text


async def test_connect_errors_stay_errors_when_the_policy_says_so(
    kairos_gateway, backend_factory, http
) -> None:
    good = await backend_factory(ws_app(WsBackendState()))
    dead = f"http://127.0.0.1:{free_port()}"
    policy = {"max_retries": 2, "on_connect_error": False}
    gw = await kairos_gateway(route([dead, good.url], policy))
    statuses = await upgrades(http, gw.url + "/ws")
    assert sorted(set(statuses)) == [101, 502]  # round robin: every other one hits the dead port
