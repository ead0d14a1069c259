"""PROXY protocol v1/v2 on listeners, plain and with TLS after the header."""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
from pathlib import Path

import pytest
import trustme

from kairos_core.server.proxy_protocol import V2_SIGNATURE, ProxyHeaderError, parse_proxy_header


def v2_header(
    source: str, destination: str = "192.0.2.1", sport: int = 5555, dport: int = 443
) -> bytes:
    family = socket.AF_INET6 if ":" in source else socket.AF_INET
    if family == socket.AF_INET:
        body = (
            socket.inet_pton(family, source)
            + socket.inet_pton(family, destination)
            + struct.pack("!HH", sport, dport)
        )
        return V2_SIGNATURE + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body
    body = (
        socket.inet_pton(family, source)
        + socket.inet_pton(family, "2001:db8::1")
        + struct.pack("!HH", sport, dport)
    )
    return V2_SIGNATURE + bytes([0x21, 0x21]) + struct.pack("!H", len(body)) + body


def test_header_parsing() -> None:
    assert parse_proxy_header(b"PROXY TCP4 203.0.113.7 192.0.2.1 5555 80\r\nGET") == (
        "203.0.113.7",
        42,
    )
    assert parse_proxy_header(b"PROXY UNKNOWN\r\n") == (None, 15)
    assert parse_proxy_header(b"PROXY TCP4 1.2.3.4") is None
    assert parse_proxy_header(b"PRO") is None
    assert parse_proxy_header(v2_header("2001:db8::7"))[0] == "2001:db8::7"  # type: ignore[index]
    assert parse_proxy_header(v2_header("198.51.100.4")[:20]) is None
    local = V2_SIGNATURE + bytes([0x20, 0x00, 0, 0])
    assert parse_proxy_header(local) == (None, 16)
    for bad in (
        b"GET / HTTP/1.1\r\n",
        b"PROXY TCP4 1.2.3.4 nope 1 2\r\n",
        b"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",
    ):
        with pytest.raises(ProxyHeaderError):
            parse_proxy_header(bad)


async def exchange(port: int, data: bytes, tls: ssl.SSLContext | None = None) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data[0] if isinstance(data, tuple) else data)
    await writer.drain()
    if tls is not None:
        await writer.start_tls(tls, server_hostname="gw.test")
        writer.write(b"GET /tls HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n")
        await writer.drain()
    try:
        async with asyncio.timeout(3):
            return await reader.read()
    except (ConnectionError, ssl.SSLError):
        return b""
    finally:
        writer.close()


async def test_v1_and_v2_set_the_client_address(kairos_gateway, echo_backend) -> None:
    gw = await kairos_gateway(
        {
            "listeners": [{"host": "127.0.0.1", "port": 0, "proxy_protocol": True}],
            "routes": [{"prefix": "/", "upstream": {"backends": [{"url": echo_backend.url}]}}],
        }
    )
    port = int(gw.url.rsplit(":", 1)[1])
    request = b"GET /p HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    answer = await exchange(port, b"PROXY TCP4 203.0.113.7 192.0.2.1 5555 80\r\n" + request)
    assert answer.startswith(b"HTTP/1.1 200")
    assert echo_backend.records[-1].headers["X-Forwarded-For"] == "203.0.113.7"
    answer = await exchange(port, v2_header("2001:db8::7") + request)
    assert answer.startswith(b"HTTP/1.1 200")
    assert echo_backend.records[-1].headers["X-Forwarded-For"] == "2001:db8::7"
    assert echo_backend.records[-1].headers["Forwarded"].startswith('for="[2001:db8::7]"')
    assert await exchange(port, request) == b""  # no header: dropped, never forwarded
    assert len(echo_backend.records) == 2


async def test_proxy_header_then_tls(kairos_gateway, echo_backend, tmp_path: Path) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("gw.test")
    cert, key = tmp_path / "c.pem", tmp_path / "c.key"
    cert.write_bytes(b"".join(b.bytes() for b in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key))
    gw = await kairos_gateway(
        {
            "listeners": [
                {
                    "host": "127.0.0.1",
                    "port": 0,
                    "proxy_protocol": True,
                    "tls": {"certificates": [{"cert": str(cert), "key": str(key)}]},
                }
            ],
            "routes": [{"prefix": "/", "upstream": {"backends": [{"url": echo_backend.url}]}}],
        }
    )
    port = int(gw.url.rsplit(":", 1)[1])
    context = ssl.create_default_context()
    ca.configure_trust(context)
    answer = await exchange(port, v2_header("198.51.100.4"), tls=context)
    assert answer.startswith(b"HTTP/1.1 200")
    record = echo_backend.records[-1]
    assert record.path == "/tls"
    assert record.headers["X-Forwarded-For"] == "198.51.100.4"
    assert record.headers["X-Forwarded-Proto"] == "https"


async def test_untrusted_peer_is_refused_when_trusted_proxies_are_set(
    kairos_gateway, echo_backend
) -> None:
    gw = await kairos_gateway(
        {
            "server": {"trusted_proxies": ["10.0.0.0/8"]},
            "listeners": [{"host": "127.0.0.1", "port": 0, "proxy_protocol": True}],
            "routes": [{"prefix": "/", "upstream": {"backends": [{"url": echo_backend.url}]}}],
        }
    )
    port = int(gw.url.rsplit(":", 1)[1])
    answer = await exchange(
        port, b"PROXY TCP4 203.0.113.7 192.0.2.1 5555 80\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    assert answer == b""
    assert echo_backend.records == []
