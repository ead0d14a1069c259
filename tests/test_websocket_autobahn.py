"""Autobahn WebSocket conformance (kosoku runner): through the gateway == directly to the backend."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
from aiohttp import WSMsgType, web

from kairos_core.testing import require_service

SLOW_GROUPS = ["9.*", "12.*", "13.*"]


def echo_app() -> web.Application:
    """A plain echo server: the Autobahn fuzzing client's reference peer."""

    async def handler(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(max_msg_size=0, compress=True)
        await socket.prepare(request)
        async for message in socket:
            if message.type == WSMsgType.TEXT:
                await socket.send_str(message.data)
            elif message.type == WSMsgType.BINARY:
                await socket.send_bytes(message.data)
        return socket

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    return app


async def run_cases(url: str, cases: list[str], exclude: list[str]) -> dict[str, tuple[str, str]]:
    from kosoku import FailureError, run_fuzzingclient

    try:
        results: list[Any] = await run_fuzzingclient(
            url, cases=cases, exclude_cases=exclude, concurrency=4
        )
    except FailureError as exc:
        results = exc.results
    return {r.case_id: (r.behavior.value, r.behavior_close.value) for r in results}


async def compare(kairos_gateway, backend_factory, cases: list[str], exclude: list[str]) -> None:
    require_service(
        "kosoku (Autobahn runner)",
        importlib.util.find_spec("kosoku") is not None,
        "pip install kosoku",
    )
    backend = await backend_factory(echo_app())
    gw = await kairos_gateway(
        {
            "routes": [
                {
                    "prefix": "/",
                    "upstream": {"backends": [{"url": backend.url}]},
                    "websocket": {"max_message_size": "64MiB"},
                }
            ]
        }
    )
    direct = await run_cases(backend.url.replace("http", "ws", 1), cases, exclude)
    proxied = await run_cases(gw.url.replace("http", "ws", 1), cases, exclude)
    assert len(direct) > 0
    differences = {
        case: (direct[case], proxied.get(case))
        for case in direct
        if direct[case] != proxied.get(case)
    }
    assert differences == {}


async def test_autobahn_cases_match_direct(kairos_gateway, backend_factory) -> None:
    await compare(kairos_gateway, backend_factory, ["*"], SLOW_GROUPS)


@pytest.mark.slow
async def test_autobahn_slow_cases_match_direct(kairos_gateway, backend_factory) -> None:
    await compare(kairos_gateway, backend_factory, SLOW_GROUPS, [])
