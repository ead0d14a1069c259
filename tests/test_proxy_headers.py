"""Proxy header rules: hop-by-hop, forwarding headers, trusted proxies, request id, Host."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kairos_core.testing import Backend


def one_route(backend: Backend, **route: Any) -> dict[str, Any]:
    return {"routes": [{"prefix": "/", "upstream": {"backends": [{"url": backend.url}]}, **route}]}


async def raw_request(url: str, request: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request)
    await writer.drain()
    data = await reader.read()
    writer.close()
    return data


async def test_hop_by_hop_headers_are_removed(kairos_gateway, echo_backend) -> None:
    gw = await kairos_gateway(one_route(echo_backend))
    await raw_request(
        gw.url,
        b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close, X-Private\r\nX-Private: 1\r\n"
        b"Keep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Authorization: Basic Zm9v\r\n"
        b"Upgrade: h2c\r\nX-Kept: yes\r\n\r\n",
    )
    received = echo_backend.records[-1].headers
    for name in ("Connection", "X-Private", "Keep-Alive", "TE", "Proxy-Authorization", "Upgrade"):
        assert name not in received, name
    assert received["X-Kept"] == "yes"


async def test_forwarding_headers_from_an_untrusted_client(
    kairos_gateway, echo_backend, http
) -> None:
    gw = await kairos_gateway(one_route(echo_backend))
    spoof = {
        "X-Forwarded-For": "6.6.6.6",
        "X-Forwarded-Proto": "https",
        "Forwarded": "for=6.6.6.6",
        "X-Forwarded-Host": "evil",
    }
    async with http.get(gw.url + "/", headers=spoof) as response:
        assert response.status == 200
    received = echo_backend.records[-1].headers
    assert received["X-Forwarded-For"] == "127.0.0.1"
    assert received["X-Forwarded-Proto"] == "http"
    assert received["X-Forwarded-Host"] == gw.url.removeprefix("http://")
    assert (
        received["Forwarded"] == f'for=127.0.0.1;proto=http;host="{gw.url.removeprefix("http://")}"'
    )


async def test_forwarding_headers_from_a_trusted_proxy(kairos_gateway, echo_backend, http) -> None:
    config = one_route(echo_backend)
    config["server"] = {"trusted_proxies": ["127.0.0.0/8"]}
    seen: list[str] = []

    async def capture(ctx, call_next):
        seen.append(ctx.client_ip)
        return await call_next(ctx)

    from kairos_core import StagePlugin, hookimpl

    class Capture:
        @hookimpl
        def register_transformers(self, register):
            register(StagePlugin(name="capture", build=lambda c, b: capture))

    config["plugins"] = [{"name": "capture"}]
    gw = await kairos_gateway(config, plugins=[Capture()])
    headers = {
        "X-Forwarded-For": "203.0.113.9, 10.0.0.1",
        "X-Forwarded-Proto": "https",
        "Forwarded": "for=203.0.113.9",
    }
    async with http.get(gw.url + "/", headers=headers) as response:
        assert response.status == 200
    received = echo_backend.records[-1].headers
    assert received["X-Forwarded-For"] == "203.0.113.9, 10.0.0.1, 127.0.0.1"
    assert received["X-Forwarded-Proto"] == "https"
    assert (
        received["Forwarded"]
        == f'for=203.0.113.9, for=127.0.0.1;proto=http;host="{gw.url.removeprefix("http://")}"'
    )
    assert seen == ["10.0.0.1"]


async def test_request_id_is_generated_propagated_and_echoed(
    kairos_gateway, echo_backend, http
) -> None:
    gw = await kairos_gateway(one_route(echo_backend))
    async with http.get(gw.url + "/") as response:
        generated = response.headers["X-Request-ID"]
    assert len(generated) == 32
    assert echo_backend.records[-1].headers["X-Request-ID"] == generated
    async with http.get(gw.url + "/", headers={"X-Request-ID": "abc-123"}) as response:
        assert response.headers["X-Request-ID"] == "abc-123"
    assert echo_backend.records[-1].headers["X-Request-ID"] == "abc-123"
    async with http.get(gw.url + "/", headers={"X-Request-ID": "bad id\twith spaces"}) as response:
        assert response.headers["X-Request-ID"] != "bad id\twith spaces"


async def test_host_header_modes(kairos_gateway, echo_backend, http) -> None:
    backend_host = echo_backend.url.removeprefix("http://")
    gw = await kairos_gateway(
        {
            "routes": [
                {"path": "/default", "upstream": {"backends": [{"url": echo_backend.url}]}},
                {
                    "path": "/preserve",
                    "preserve_host": True,
                    "upstream": {"backends": [{"url": echo_backend.url}]},
                },
                {
                    "path": "/fixed",
                    "host_header": "api.internal",
                    "upstream": {"backends": [{"url": echo_backend.url}]},
                },
            ]
        }
    )
    for path, expected in (
        ("/default", backend_host),
        ("/preserve", "client.example"),
        ("/fixed", "api.internal"),
    ):
        async with http.get(gw.url + path, headers={"Host": "client.example"}) as response:
            assert response.status == 200, path
        assert echo_backend.records[-1].headers["Host"] == expected, path


async def test_consumer_header_cannot_be_spoofed(kairos_gateway, echo_backend, http) -> None:
    gw = await kairos_gateway(one_route(echo_backend))
    async with http.get(gw.url + "/", headers={"X-Consumer": "admin"}) as response:
        assert response.status == 200
    assert "X-Consumer" not in echo_backend.records[-1].headers


async def test_response_hop_by_hop_removed_and_server_kept(
    kairos_gateway, backend_factory, http
) -> None:
    from aiohttp import web

    async def handler(request: web.Request) -> web.Response:
        return web.Response(
            text="ok", headers={"Connection": "X-Drop", "X-Drop": "1", "Server": "backend/1"}
        )

    app = web.Application()
    app.router.add_get("/", handler)
    backend = await backend_factory(app)
    gw = await kairos_gateway(one_route(backend))
    async with http.get(gw.url + "/") as response:
        assert "X-Drop" not in response.headers
        assert response.headers["Server"] == "backend/1"
    async with http.get(gw.url + "/missing-route-is-fine") as response:
        assert response.status == 404


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Keep-Alive", "timeout=5"),
        ("TE", "trailers"),
        ("Trailer", "X-Sum"),
        ("Proxy-Authorization", "Basic Zm9v"),
        ("Proxy-Connection", "keep-alive"),
        ("Transfer_Encoding", "chunked"),
        ("Content_Length", "5"),
    ],
)
async def test_one_connection_field_alone_is_removed(
    kairos_gateway, echo_backend, http, name: str, value: str
) -> None:
    """Without `Connection` or `Upgrade` the lean server serves the request: it must still see
    that this one field makes the request's headers more than a plain copy."""
    gw = await kairos_gateway(one_route(echo_backend))
    sent = {"X-Before": "1", name: value, "X-After": "2"}
    async with http.get(gw.url + "/", headers=sent) as response:
        assert response.status == 200
    received = echo_backend.records[-1].headers
    assert name not in received
    assert (received["X-Before"], received["X-After"]) == ("1", "2")
    assert received["X-Forwarded-For"] == "127.0.0.1"


async def test_a_plain_request_is_copied_whole_in_order(kairos_gateway, echo_backend) -> None:
    """The usual request (nothing to drop) keeps every field and its order, forwarding last."""
    gw = await kairos_gateway(one_route(echo_backend))
    host, port = gw.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"GET /x HTTP/1.1\r\nHost: a\r\nX-One: 1\r\nAccept: */*\r\nX-Two: 2\r\n"
        b"Cookie: c=1\r\nX-Forwarded-Proto-Not: kept\r\n\r\n"
    )
    head = await reader.readuntil(b"\r\n\r\n")
    writer.close()
    assert head.startswith(b"HTTP/1.1 200 ")
    received = list(echo_backend.records[-1].headers.items())
    names = [name for name, _ in received]
    assert names[0] == "Host"  # the backend's, in the client's place
    assert [pair for pair in received if pair[0] in ("X-One", "Accept", "X-Two", "Cookie")] == [
        ("X-One", "1"),
        ("Accept", "*/*"),
        ("X-Two", "2"),
        ("Cookie", "c=1"),
    ]
    assert ("X-Forwarded-Proto-Not", "kept") in received
    assert names.count("X-Forwarded-For") == 1 and names.count("Forwarded") == 1
