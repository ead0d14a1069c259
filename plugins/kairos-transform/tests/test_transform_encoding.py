"""Compressed bodies: decode, edit, re-encode (or send identity) with headers that stay true."""

from __future__ import annotations

import gzip
import json
import zlib

import brotli
import kairos_transform
import pytest

DOC = {"keep": "value", "secret": "hide me", "n": [1, 2, 3]}
EDITED = {"keep": "value", "n": [1, 2, 3]}
ACTIONS = [{"action": "remove", "path": "secret"}]


def raw_deflate(data: bytes) -> bytes:
    encoder = zlib.compressobj(6, zlib.DEFLATED, -15)
    return encoder.compress(data) + encoder.flush()


DECODERS = {
    "gzip": gzip.decompress,
    "deflate": zlib.decompress,
    "br": brotli.decompress,
    "gzip, br": lambda data: gzip.decompress(brotli.decompress(data)),
}


@pytest.mark.parametrize(
    ("coding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", raw_deflate),  # servers that send raw deflate are read too
        ("br", brotli.compress),
        ("gzip, br", lambda data: brotli.compress(gzip.compress(data))),
    ],
)
async def test_compressed_response_is_edited_and_recompressed(
    kairos_gateway, serve, http, route, coding, encode
) -> None:
    body = encode(json.dumps(DOC).encode())
    backend = await serve(
        body,
        {
            "Content-Type": "application/json",
            "Content-Encoding": coding,
            "ETag": '"v1"',
            "Content-MD5": "stale",
        },
    )
    gw = await kairos_gateway(
        route(backend, {"response": {"body": ACTIONS}}), plugins=[kairos_transform]
    )
    async with http.get(gw.url + "/", headers={"Accept-Encoding": "gzip, deflate, br"}) as response:
        assert response.status == 200
        raw = await response.read()
        assert response.headers["Content-Encoding"] == coding
        assert response.headers["Content-Length"] == str(len(raw))
        assert response.headers["ETag"] == 'W/"v1"'
        assert "Content-MD5" not in response.headers
    assert json.loads(DECODERS[coding](raw)) == EDITED


async def test_identity_instead_of_recompressing(kairos_gateway, serve, http, route) -> None:
    backend = await serve(
        gzip.compress(json.dumps(DOC).encode()),
        {"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    config = {"response": {"recompress": False, "body": ACTIONS}}
    gw = await kairos_gateway(route(backend, config), plugins=[kairos_transform])
    async with http.get(gw.url + "/", headers={"Accept-Encoding": "gzip"}) as response:
        raw = await response.read()
        assert "Content-Encoding" not in response.headers
        assert response.headers["Content-Length"] == str(len(raw))
    assert json.loads(raw) == EDITED


async def test_gateway_compression_applies_after_the_edit(
    kairos_gateway, serve, http, route
) -> None:
    doc = {**DOC, "padding": "p" * 2000}
    backend = await serve(json.dumps(doc).encode(), {"Content-Type": "application/json"})
    cfg = route(
        backend, {"response": {"body": ACTIONS}}, top={"server": {"compression": {"enabled": True}}}
    )
    gw = await kairos_gateway(cfg, plugins=[kairos_transform])
    async with http.get(gw.url + "/", headers={"Accept-Encoding": "gzip"}) as response:
        assert response.headers["Content-Encoding"] == "gzip"
        data = json.loads(gzip.decompress(await response.read()))
    assert "secret" not in data
    assert data["padding"] == "p" * 2000


@pytest.mark.parametrize(
    ("body", "coding", "message"),
    [
        (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + b"\xff" * 20, "gzip", "corrupt gzip data"),
        (gzip.compress(json.dumps(DOC).encode())[:-12], "gzip", "truncated gzip data"),
        (b"whatever", "zstd", "content coding 'zstd' is not supported"),
        (gzip.compress(b"{broken"), "gzip", "not valid JSON"),
    ],
)
async def test_undecodable_response_is_a_clear_502(
    kairos_gateway, serve, http, route, body, coding, message
) -> None:
    backend = await serve(body, {"Content-Type": "application/json", "Content-Encoding": coding})
    gw = await kairos_gateway(
        route(backend, {"response": {"body": ACTIONS}}), plugins=[kairos_transform]
    )
    async with http.get(gw.url + "/") as response:
        assert response.status == 502
        error = await response.json()
    assert error["type"] == "invalid_upstream_body"
    assert message in error["message"]
    lenient = await kairos_gateway(
        route(backend, {"response": {"on_invalid": "pass", "body": ACTIONS}}),
        plugins=[kairos_transform],
    )
    async with http.get(lenient.url + "/") as response:
        assert response.status == 200
        assert response.headers["Content-Encoding"] == coding
        assert await response.read() == body


async def test_decompression_bomb_stops_at_the_limit(kairos_gateway, serve, http, route) -> None:
    bomb = gzip.compress(b'{"a": "' + b"0" * (8 * 1024 * 1024) + b'"}')
    assert len(bomb) < 64 * 1024
    backend = await serve(bomb, {"Content-Type": "application/json", "Content-Encoding": "gzip"})
    gw = await kairos_gateway(
        route(backend, {"response": {"body": ACTIONS}}), plugins=[kairos_transform]
    )
    async with http.get(gw.url + "/") as response:
        assert response.status == 502
        error = await response.json()
    assert error["type"] == "upstream_body_too_large"
    assert "once decoded" in error["message"]


async def test_compressed_request_body(kairos_gateway, raw_backend, http, route) -> None:
    config = {"request": {"body": [{"action": "set", "path": "added", "value": 1}]}}
    gw = await kairos_gateway(route(raw_backend, config), plugins=[kairos_transform])
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    async with http.post(gw.url + "/", data=gzip.compress(b'{"a": 0}'), headers=headers) as r:
        assert r.status == 200
    received, body = raw_backend.requests[-1]
    assert received["content-encoding"] == "gzip"
    assert received["content-length"] == str(len(body))
    assert json.loads(gzip.decompress(body)) == {"a": 0, "added": 1}
    headers["Content-Encoding"] = "zstd"
    async with http.post(gw.url + "/", data=b"\x28\xb5\x2f\xfd", headers=headers) as r:
        assert r.status == 415
        error = await r.json()
    assert error["type"] == "unsupported_encoding"
    assert "zstd" in error["message"]
