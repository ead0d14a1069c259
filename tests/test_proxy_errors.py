"""Clear JSON errors: oversized bodies and headers, broken and slow backends."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp import web

from kairos_core.testing import Backend


def one_route(url: str, **route: Any) -> dict[str, Any]:
    return {"routes": [{"prefix": "/", "upstream": {"backends": [{"url": url}]}, **route}]}


async def raw(url: str, data: bytes, read_timeout: float = 5.0) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(data)
    await writer.drain()
    try:
        async with asyncio.timeout(read_timeout):
            return await reader.read()
    finally:
        writer.close()


async def test_body_too_large_by_content_length(kairos_gateway, echo_backend, http) -> None:
    gw = await kairos_gateway(one_route(echo_backend.url, max_body_size=1000))
    async with http.post(gw.url + "/", data=b"x" * 1001) as response:
        assert response.status == 413
        assert (await response.json())["type"] == "body_too_large"
    assert echo_backend.records == []


async def test_body_too_large_while_streaming(kairos_gateway, echo_backend, http) -> None:
    gw = await kairos_gateway(one_route(echo_backend.url, max_body_size=1000))

    async def chunks():
        for _ in range(10):
            yield b"y" * 500

    async with http.post(gw.url + "/", data=chunks()) as response:
        assert response.status == 413
    async with http.post(gw.url + "/", data=b"small") as response:
        assert response.status == 200


async def test_oversized_header_line_and_many_headers(kairos_gateway, echo_backend) -> None:
    gw = await kairos_gateway(
        {**one_route(echo_backend.url), "server": {"max_header_size": 1024, "max_headers": 20}}
    )
    big = await raw(gw.url, b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"v" * 4000 + b"\r\n\r\n")
    assert big[9:12] == b"431"
    assert b'"type": "headers_too_large"' in big
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(40))
    crowded = await raw(gw.url, b"GET / HTTP/1.1\r\nHost: a\r\n" + many + b"\r\n")
    assert crowded[9:12] == b"431"
    long_uri = await raw(gw.url, b"GET /" + b"a" * 3000 + b" HTTP/1.1\r\nHost: a\r\n\r\n")
    assert long_uri[9:12] == b"414"
    garbage = await raw(gw.url, b"NOT HTTP AT ALL\r\n\r\n")
    assert garbage[9:12] == b"400"
    assert echo_backend.records == []


async def test_upstream_timeout_is_504(kairos_gateway, backend_factory, http) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1.0)
        return web.Response(text="late")

    app = web.Application()
    app.router.add_get("/", slow)
    backend = await backend_factory(app)
    gw = await kairos_gateway(one_route(backend.url, timeouts={"total": 0.3}))
    async with http.get(gw.url + "/") as response:
        assert response.status == 504
        assert (await response.json())["type"] == "upstream_timeout"


async def test_backend_resetting_before_headers_is_502(kairos_gateway, http) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.transport.abort()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        gw = await kairos_gateway(one_route(f"http://127.0.0.1:{port}"))
        async with http.get(gw.url + "/") as response:
            assert response.status == 502
            assert (await response.json())["type"] == "upstream_reset"
    finally:
        server.close()
        await server.wait_closed()


async def test_backend_dying_mid_response_cuts_the_client_cleanly(
    kairos_gateway, http, dying_backend
) -> None:
    gw = await kairos_gateway(
        {"routes": [{"path": "/half", "upstream": {"backends": [{"url": dying_backend}]}}]}
    )
    async with http.get(gw.url + "/half") as response:
        assert response.status == 200
        try:
            await response.read()
            raise AssertionError("a truncated body must not look complete")
        except aiohttp.ClientPayloadError:
            pass
    async with http.get(gw.url + "/other") as response:
        assert response.status == 404  # the gateway keeps serving


async def test_streaming_outlives_total_timeout_but_not_idle_timeout(
    kairos_gateway, backend_factory, http
) -> None:
    async def events(request: web.Request) -> web.StreamResponse:
        gap = float(request.query["gap"])
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for number in range(4):
            await response.write(f"data: {number}\n\n".encode())
            await asyncio.sleep(gap)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/events", events)
    backend = await backend_factory(app)
    gw = await kairos_gateway(one_route(backend.url, timeouts={"total": 0.5, "read": 1.5}))
    loop = asyncio.get_running_loop()
    async with http.get(gw.url + "/events?gap=0.3") as response:
        first_at = None
        started = loop.time()
        chunks = []
        async for chunk in response.content.iter_any():
            first_at = first_at or loop.time() - started
            chunks.append(chunk)
        assert b"".join(chunks) == b"data: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\n"
        assert first_at is not None
        assert first_at < 0.3  # before the second event: streamed, not buffered
    async with http.get(gw.url + "/events?gap=2.0") as response:
        try:
            body = await response.read()
        except aiohttp.ClientPayloadError:
            body = b"cut"
        assert body != b"data: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\n"


async def test_expect_100_continue(kairos_gateway, echo_backend) -> None:
    gw = await kairos_gateway(one_route(echo_backend.url))
    host, port = gw.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
    )
    await writer.drain()
    interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
    assert interim.startswith(b"HTTP/1.1 100 Continue")
    writer.write(b"hello")
    await writer.drain()
    final = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
    assert final.startswith(b"HTTP/1.1 200")
    writer.close()
    assert echo_backend.records[-1].body == b"hello"
    assert "Expect" not in echo_backend.records[-1].headers


async def test_head_204_and_304_have_no_body(kairos_gateway, backend_factory) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        code = int(request.query.get("code", "200"))
        if code == 200:
            return web.Response(body=b"x" * 50, headers={"ETag": '"v1"'})
        return web.Response(status=code, headers={"ETag": '"v1"'})

    app = web.Application()
    app.router.add_route("*", "/", handler)
    backend: Backend = await backend_factory(app)
    gw = await kairos_gateway(one_route(backend.url))
    head = await raw(gw.url, b"HEAD / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"Content-Length: 50" in head
    assert head.endswith(b"\r\n\r\n")
    for code in (204, 304):
        answer = await raw(
            gw.url, b"GET /?code=%d HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" % code
        )
        assert answer.startswith(b"HTTP/1.1 %d" % code)
        assert answer.endswith(b"\r\n\r\n")
        assert b"Transfer-Encoding" not in answer
