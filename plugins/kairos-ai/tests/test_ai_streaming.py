"""A big request body reaches the backend byte-identical and streamed, after the excerpt peek."""

from __future__ import annotations

import asyncio
import hashlib
import resource
from collections.abc import AsyncIterator
from typing import Any

import kairos_ai
import pytest
from aiohttp import web

from kairos_core.testing import Backend

CHUNK = 256 * 1024
HEAD = b'{"prompt": "summarise this long document for ann@example.com", "data": "'


def hashing_app(name: str, received_some: asyncio.Event) -> web.Application:
    """Hashes the body as it arrives; signals once the first megabyte is in."""

    async def handler(request: web.Request) -> web.Response:
        digest = hashlib.sha256()
        total = 0
        async for chunk in request.content.iter_any():
            digest.update(chunk)
            total += len(chunk)
            if total >= 1 << 20:
                received_some.set()
        return web.json_response(
            {"sha256": digest.hexdigest(), "length": total}, headers={"X-Backend": name}
        )

    app = web.Application(client_max_size=1 << 40)
    app.router.add_post("/{tail:.*}", handler)
    return app


async def body(size: int, sent: Any, received_some: asyncio.Event) -> AsyncIterator[bytes]:
    """`size` bytes: a JSON-looking head, then varied filler; waits for the backend mid-way."""
    block = bytes((i * 7 + 3) % 251 for i in range(CHUNK))
    position = 0
    while position < size:
        chunk = (HEAD + block)[:CHUNK] if position == 0 else block
        chunk = chunk[: size - position]
        sent.update(chunk)
        position += len(chunk)
        yield chunk
        if position >= 8 << 20 and not received_some.is_set():
            # Nothing more until the backend has seen data: a gateway that buffered the
            # whole body would hang here, so passing proves the body is streamed.
            await asyncio.wait_for(received_some.wait(), 30)


@pytest.mark.parametrize(
    "size",
    [
        pytest.param(20 * 10**6, id="20MB"),
        pytest.param(100 * 10**6, id="100MB", marks=pytest.mark.slow),
    ],
)
async def test_big_body_streams_byte_identical(
    kairos_gateway: Any,
    http: Any,
    backend_factory: Any,
    fake_model: Any,
    ai_config: Any,
    size: int,
) -> None:
    received_some = asyncio.Event()
    servers: dict[str, Backend] = {
        name: await backend_factory(hashing_app(name, received_some)) for name in ("b1", "b2")
    }
    fake_model.choose = "b2"
    config = ai_config(
        fake_model,
        servers,
        request={"body_bytes": 256, "headers": ["content-type"]},
        route={"max_body_size": "200MB"},
    )
    gw = await kairos_gateway(config, plugins=[kairos_ai])
    sent = hashlib.sha256()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    headers = {"Content-Type": "application/json"}
    async with http.post(
        gw.url + "/upload", data=body(size, sent, received_some), headers=headers
    ) as response:
        assert response.status == 200
        assert response.headers["X-Backend"] == "b2"
        assert response.headers["X-Kairos-Balancer"] == "ai; backend=b2"
        result = await response.json()
    assert result == {"sha256": sent.hexdigest(), "length": size}
    growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before
    assert growth < size // 2, f"peak memory grew by {growth} bytes for a {size}-byte body"
    document = fake_model.user_messages()[0]
    assert document["body"].startswith('{"prompt": "summarise this long document for [redacted]')
    assert document["body_truncated"] is True
    assert len(document["body"]) <= 256


async def test_body_too_large_for_the_route_falls_back_and_gets_413(
    kairos_gateway: Any,
    http: Any,
    fake_model: Any,
    named_backends: dict[str, Backend],
    ai_config: Any,
) -> None:
    config = ai_config(
        fake_model, named_backends, request={"body_bytes": 4096}, route={"max_body_size": 100}
    )
    gw = await kairos_gateway(config, plugins=[kairos_ai])
    body = b'{"data": "' + b"x" * 1000 + b'"}'

    async def chunked() -> AsyncIterator[bytes]:
        yield body

    headers = {"Content-Type": "application/json"}
    async with http.post(gw.url + "/big", data=chunked(), headers=headers) as response:
        assert response.status == 413
        assert response.headers["X-Kairos-Balancer"].endswith("reason=body_error")
    assert fake_model.calls == []
