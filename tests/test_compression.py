"""Optional gzip response compression, negotiated by Accept-Encoding."""

from __future__ import annotations

import asyncio
import gzip
import zlib

from aiohttp import web

BIG = b'{"items": [' + b",".join(b'{"id": %d, "name": "item"}' % i for i in range(200)) + b"]}"


def app() -> web.Application:
    async def big(request: web.Request) -> web.Response:
        return web.Response(body=BIG, content_type="application/json", headers={"ETag": '"abc"'})

    async def small(request: web.Request) -> web.Response:
        return web.Response(body=b'{"ok": true}', content_type="application/json")

    async def encoded(request: web.Request) -> web.Response:
        return web.Response(
            body=gzip.compress(BIG),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )

    async def image(request: web.Request) -> web.Response:
        return web.Response(body=b"\x89PNG" + b"\x00" * 5000, content_type="image/png")

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"data: first\n\n")
        await asyncio.sleep(2.0)
        await response.write(b"data: second\n\n")
        await response.write_eof()
        return response

    application = web.Application()
    for path, handler in (
        ("/big", big),
        ("/small", small),
        ("/encoded", encoded),
        ("/image", image),
        ("/events", events),
    ):
        application.router.add_get(path, handler)
    return application


async def test_gzip_negotiation(kairos_gateway, backend_factory, http) -> None:
    backend = await backend_factory(app())
    gw = await kairos_gateway(
        {
            "server": {"compression": {"enabled": True, "min_size": 200}},
            "routes": [
                {"prefix": "/", "upstream": {"backends": [{"url": backend.url}]}},
                {
                    "prefix": "/off",
                    "strip_prefix": True,
                    "compression": False,
                    "upstream": {"backends": [{"url": backend.url}]},
                },
            ],
        }
    )
    gz = {"Accept-Encoding": "gzip, deflate"}
    async with http.get(gw.url + "/big", headers=gz) as response:
        assert response.headers["Content-Encoding"] == "gzip"
        assert response.headers["Vary"] == "Accept-Encoding"
        assert response.headers["ETag"] == 'W/"abc"'
        assert gzip.decompress(await response.read()) == BIG
    async with http.get(gw.url + "/big", skip_auto_headers=["Accept-Encoding"]) as response:
        assert "Content-Encoding" not in response.headers
        assert await response.read() == BIG
    for path in ("/small", "/image", "/off/big"):
        async with http.get(gw.url + path, headers=gz) as response:
            assert "Content-Encoding" not in response.headers, path
    async with http.get(gw.url + "/encoded", headers=gz) as response:
        assert response.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(await response.read()) == BIG


async def test_streams_are_compressed_chunk_by_chunk(kairos_gateway, backend_factory, http) -> None:
    backend = await backend_factory(app())
    gw = await kairos_gateway(
        {
            "server": {"compression": {"enabled": True}},
            "routes": [{"prefix": "/", "upstream": {"backends": [{"url": backend.url}]}}],
        }
    )
    async with http.get(gw.url + "/events", headers={"Accept-Encoding": "gzip"}) as response:
        assert response.headers["Content-Encoding"] == "gzip"
        decompressor = zlib.decompressobj(31)
        first = await asyncio.wait_for(response.content.readany(), 1.5)  # before the second
        assert decompressor.decompress(first) == b"data: first\n\n"
        rest = await response.read()
        assert decompressor.decompress(rest) + decompressor.flush() == b"data: second\n\n"
