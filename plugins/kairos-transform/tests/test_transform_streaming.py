"""Bodies stream through untouched unless a body rule applies: checked chunk by chunk."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import kairos_transform
import pytest
from aiohttp import web

HEADER_ONLY = {
    "request": {"headers": [{"action": "set", "name": "X-T", "value": "1"}]},
    "response": {"headers": [{"action": "set", "name": "X-T", "value": "1"}]},
}
BODY_RULE_ELSEWHERE = {  # body rules exist, but not for this content type / status
    "request": {"body": [{"action": "set", "path": "x", "value": 1}]},
    "response": {
        "body": [{"action": "remove", "path": "x", "when": {"status": ["5xx"]}}],
        "headers": [{"action": "set", "name": "X-T", "value": "1"}],
    },
}


def stepped_app(content_type: str, proceed: asyncio.Event) -> web.Application:
    """Sends a first chunk, then waits until the test has seen it before finishing."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": content_type})
        await response.prepare(request)
        await response.write(b'{"part": 1,')
        await proceed.wait()
        await response.write(b' "x": 2}')
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    return app


@pytest.mark.parametrize(
    ("config", "content_type"),
    [
        (HEADER_ONLY, "application/json"),
        (BODY_RULE_ELSEWHERE, "text/event-stream"),
        (BODY_RULE_ELSEWHERE, "application/json"),  # the body rule's condition does not hold
    ],
)
async def test_response_streams_without_buffering(
    kairos_gateway, backend_factory, http, route, config: dict[str, Any], content_type: str
) -> None:
    proceed = asyncio.Event()
    backend = await backend_factory(stepped_app(content_type, proceed))
    gw = await kairos_gateway(route(backend, config), plugins=[kairos_transform])
    async with http.get(gw.url + "/stream") as response:
        assert response.headers["X-T"] == "1"
        assert "Content-Length" not in response.headers
        async with asyncio.timeout(5):  # a buffering gateway would wait for the end: deadlock
            first = await response.content.readany()
        assert first == b'{"part": 1,'
        proceed.set()
        rest = await response.content.read()
    assert first + rest == b'{"part": 1, "x": 2}'


async def test_streamed_json_over_the_limit(kairos_gateway, backend_factory, http, route) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"secret": 1, "data": "')
        for _ in range(20):
            await response.write(b"z" * 50)
        await response.write(b'"}')
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/", handler)
    backend = await backend_factory(app)
    actions = [{"action": "remove", "path": "secret"}]
    lenient = await kairos_gateway(
        route(backend, {"response": {"body_limit": 200, "on_oversize": "pass", "body": actions}}),
        plugins=[kairos_transform],
    )
    async with http.get(lenient.url + "/") as response:
        assert response.status == 200
        doc = json.loads(await response.read())  # complete, in order, untouched
    assert doc == {"secret": 1, "data": "z" * 1000}
    strict = await kairos_gateway(
        route(backend, {"response": {"body_limit": 200, "body": actions}}),
        plugins=[kairos_transform],
    )
    async with http.get(strict.url + "/") as response:
        assert response.status == 502
        assert (await response.json())["type"] == "upstream_body_too_large"


@pytest.mark.parametrize(
    ("config", "content_type"),
    [(HEADER_ONLY, "application/json"), (BODY_RULE_ELSEWHERE, "application/octet-stream")],
)
async def test_request_streams_without_buffering(
    kairos_gateway, backend_factory, http, route, config: dict[str, Any], content_type: str
) -> None:
    first_seen = asyncio.Event()
    received: list[bytes] = []

    async def handler(request: web.Request) -> web.Response:
        received.append(await request.content.readany())
        first_seen.set()
        received.append(await request.content.read())
        return web.Response(text="done")

    app = web.Application()
    app.router.add_post("/{tail:.*}", handler)
    backend = await backend_factory(app)
    gw = await kairos_gateway(route(backend, config), plugins=[kairos_transform])

    async def upload() -> AsyncIterator[bytes]:
        yield b"first chunk|"
        async with asyncio.timeout(5):  # the backend must see chunk one before chunk two exists
            await first_seen.wait()
        yield b"second chunk"

    headers = {"Content-Type": content_type}
    async with http.post(gw.url + "/up", data=upload(), headers=headers) as response:
        assert response.status == 200
    assert received == [b"first chunk|", b"second chunk"]
