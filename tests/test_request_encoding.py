"""Compressed request bodies reach the backend byte for byte, with their own Content-Length."""

from __future__ import annotations

import asyncio
import gzip


async def test_gzip_request_body_is_forwarded_as_received(kairos_gateway, http) -> None:
    received: dict[str, bytes] = {}

    async def raw_backend(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        received["body"] = await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(raw_backend, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = {
        "routes": [{"prefix": "/", "upstream": {"backends": [{"url": f"http://127.0.0.1:{port}"}]}}]
    }
    payload = gzip.compress(b'{"a": 0}' * 10)
    try:
        gw = await kairos_gateway(config)
        headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
        async with http.post(gw.url + "/", data=payload, headers=headers) as response:
            assert response.status == 200
            assert await response.read() == b"ok"
    finally:
        server.close()
        await server.wait_closed()
    assert received["body"] == payload
