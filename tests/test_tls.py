"""HTTPS listeners (SNI, redirect) and HTTPS upstreams (verification, CA bundle, SNI, client certs)."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
from aiohttp import web

from kairos_core.testing import start_backend
from kairos_core.tls import TLSConfigError


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def write_pair(cert: trustme.LeafCert, directory: Path, name: str) -> tuple[str, str]:
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert.private_key_pem.write_to_path(str(key_path))
    cert_path.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    return str(cert_path), str(key_path)


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def peer_certificate_names(port: int, server_name: str, ca: trustme.CA) -> list[str]:
    _, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=client_context(ca), server_hostname=server_name
    )
    cert = writer.get_extra_info("peercert")
    writer.close()
    return [value for kind, value in cert.get("subjectAltName", ()) if kind == "DNS"]


async def test_https_listener_serves_certificates_by_sni(
    kairos_gateway, echo_backend, ca, tmp_path
) -> None:
    a_cert, a_key = write_pair(ca.issue_cert("a.example.test"), tmp_path, "a")
    b_cert, b_key = write_pair(ca.issue_cert("*.b.example.test"), tmp_path, "b")
    gw = await kairos_gateway(
        {
            "listeners": [
                {
                    "host": "127.0.0.1",
                    "port": 0,
                    "tls": {
                        "certificates": [
                            {"cert": a_cert, "key": a_key, "server_names": ["a.example.test"]},
                            {"cert": b_cert, "key": b_key, "server_names": ["*.b.example.test"]},
                        ]
                    },
                }
            ],
            "routes": [{"prefix": "/", "upstream": {"backends": [{"url": echo_backend.url}]}}],
        }
    )
    assert gw.url.startswith("https://")
    port = int(gw.url.rsplit(":", 1)[1])
    assert await peer_certificate_names(port, "a.example.test", ca) == ["a.example.test"]
    assert await peer_certificate_names(port, "x.b.example.test", ca) == ["*.b.example.test"]
    default_only = client_context(ca)
    default_only.check_hostname = False
    _, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=default_only, server_hostname="unknown.test"
    )
    names = [
        v for k, v in writer.get_extra_info("peercert").get("subjectAltName", ()) if k == "DNS"
    ]
    writer.close()
    assert names == ["a.example.test"]  # the first certificate is the default
    connector = aiohttp.TCPConnector(ssl=client_context(ca))
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.get(
            f"https://127.0.0.1:{port}/hi", server_hostname="a.example.test"
        ) as response:
            assert response.status == 200
    assert echo_backend.records[-1].headers["X-Forwarded-Proto"] == "https"


async def test_http_listener_can_redirect_to_https(kairos_gateway, echo_backend, http) -> None:
    gw = await kairos_gateway(
        {
            "listeners": [
                {"host": "127.0.0.1", "port": 0, "redirect_to_https": "https://example.test:8443"}
            ],
            "routes": [{"prefix": "/", "upstream": {"backends": [{"url": echo_backend.url}]}}],
        }
    )
    async with http.get(gw.url + "/a/b?c=1", allow_redirects=False) as response:
        assert response.status == 308
        assert response.headers["Location"] == "https://example.test:8443/a/b?c=1"
    assert echo_backend.records == []


def https_backend_app() -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        subject = dict(x[0] for x in peer["subject"]) if peer else {}
        return web.json_response({"client": subject.get("commonName")})

    app = web.Application()
    app.router.add_get("/", hello)
    return app


async def start_https_backend(
    ca: trustme.CA, tmp_path: Path, name: str, require_client: bool = False
) -> Any:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(context)
    if require_client:
        context.verify_mode = ssl.CERT_REQUIRED
        ca.configure_trust(context)
    runner = web.AppRunner(https_backend_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, port


async def test_https_upstream_verification(kairos_gateway, ca, tmp_path, http) -> None:
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    runner, port = await start_https_backend(ca, tmp_path, "backend.internal")
    try:
        url = f"https://127.0.0.1:{port}"
        gw = await kairos_gateway(
            {
                "upstreams": {
                    "trusted": {
                        "backends": [{"url": url}],
                        "tls": {"ca_bundle": str(ca_path), "server_name": "backend.internal"},
                    },
                    "untrusted": {"backends": [{"url": url}]},
                    "wrong_name": {"backends": [{"url": url}], "tls": {"ca_bundle": str(ca_path)}},
                    "unverified": {"backends": [{"url": url}], "tls": {"verify": False}},
                },
                "routes": [
                    {"path": f"/{name}", "upstream": name, "rewrite": "/"}
                    for name in ("trusted", "untrusted", "wrong_name", "unverified")
                ],
            }
        )
        expectations = {"trusted": 200, "untrusted": 502, "wrong_name": 502, "unverified": 200}
        for name, status in expectations.items():
            async with http.get(f"{gw.url}/{name}") as response:
                assert response.status == status, name
                if status == 502:
                    assert (await response.json())["type"] == "upstream_connect"
    finally:
        await runner.cleanup()


async def test_https_upstream_with_client_certificate(kairos_gateway, ca, tmp_path, http) -> None:
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    client_cert, client_key = write_pair(
        ca.issue_cert("kairos-gateway", common_name="kairos-gateway"), tmp_path, "client"
    )
    runner, port = await start_https_backend(ca, tmp_path, "backend.internal", require_client=True)
    try:
        url = f"https://127.0.0.1:{port}"
        tls = {"ca_bundle": str(ca_path), "server_name": "backend.internal"}
        gw = await kairos_gateway(
            {
                "upstreams": {
                    "mtls": {
                        "backends": [{"url": url}],
                        "tls": {**tls, "client_cert": client_cert, "client_key": client_key},
                    },
                    "anonymous": {"backends": [{"url": url}], "tls": tls},
                },
                "routes": [
                    {"path": f"/{n}", "upstream": n, "rewrite": "/"} for n in ("mtls", "anonymous")
                ],
            }
        )
        async with http.get(gw.url + "/mtls") as response:
            assert response.status == 200
            assert (await response.json()) == {"client": "kairos-gateway"}
        async with http.get(gw.url + "/anonymous") as response:
            assert response.status == 502
    finally:
        await runner.cleanup()


async def test_listener_can_require_client_certificates(
    kairos_gateway, echo_backend, ca, tmp_path
) -> None:
    cert, key = write_pair(ca.issue_cert("gw.test"), tmp_path, "gw")
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    gw = await kairos_gateway(
        {
            "listeners": [
                {
                    "host": "127.0.0.1",
                    "port": 0,
                    "tls": {
                        "certificates": [{"cert": cert, "key": key}],
                        "client_ca": str(ca_path),
                        "client_cert": "required",
                    },
                }
            ],
            "routes": [{"prefix": "/", "upstream": {"backends": [{"url": echo_backend.url}]}}],
        }
    )
    port = int(gw.url.rsplit(":", 1)[1])
    anonymous = client_context(ca)
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=anonymous, server_hostname="gw.test"
        )
        writer.write(b"GET / HTTP/1.1\r\nHost: gw.test\r\n\r\n")
        await writer.drain()
        answer = await reader.read()
    except (ssl.SSLError, ConnectionError):
        answer = b""
    assert not answer.startswith(b"HTTP")
    assert echo_backend.records == []
    with_cert = client_context(ca)
    ca.issue_cert("alice").configure_cert(with_cert)
    connector = aiohttp.TCPConnector(ssl=with_cert)
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.get(f"https://127.0.0.1:{port}/", server_hostname="gw.test") as response:
            assert response.status == 200


async def test_unreadable_certificate_is_a_clear_error(tmp_path) -> None:
    from kairos_core.testing import running_gateway
    from kairos_core.tls import TLSConfigError

    config = {
        "listeners": [
            {
                "host": "127.0.0.1",
                "port": 0,
                "tls": {
                    "certificates": [
                        {"cert": str(tmp_path / "no.pem"), "key": str(tmp_path / "no.key")}
                    ]
                },
            }
        ],
        "routes": [],
    }
    with pytest.raises(TLSConfigError, match="cannot load certificate"):
        async with running_gateway(config):
            pass
    async with start_backend(web.Application()):
        pass


async def test_reload_reads_certificates_again(kairos_gateway, echo_backend, ca, tmp_path) -> None:
    cert, key = write_pair(ca.issue_cert("old.example.test"), tmp_path, "site")
    config = {
        "listeners": [
            {"host": "127.0.0.1", "port": 0, "tls": {"certificates": [{"cert": cert, "key": key}]}}
        ],
        "routes": [{"prefix": "/", "upstream": {"backends": [{"url": echo_backend.url}]}}],
    }
    gw = await kairos_gateway(config)
    port = int(gw.url.rsplit(":", 1)[1])
    assert await peer_certificate_names(port, "old.example.test", ca) == ["old.example.test"]
    # an open connection made before the reload keeps working after it
    connector = aiohttp.TCPConnector(ssl=client_context(ca), limit=1)
    async with aiohttp.ClientSession(connector=connector) as session:
        url = f"https://127.0.0.1:{port}/before"
        async with session.get(url, server_hostname="old.example.test") as response:
            assert response.status == 200

        write_pair(ca.issue_cert("new.example.test"), tmp_path, "site")  # renewed in place
        await gw.reload(config)
        assert await peer_certificate_names(port, "new.example.test", ca) == ["new.example.test"]
        async with session.get(url, server_hostname="old.example.test") as response:
            assert response.status == 200

    # a broken certificate on reload: the reload fails and the current one keeps serving
    Path(cert).write_text("not a certificate")  # noqa: ASYNC240 - a tiny test file
    with pytest.raises(TLSConfigError, match="cannot load certificate"):
        await gw.reload(config)
    assert await peer_certificate_names(port, "new.example.test", ca) == ["new.example.test"]
