"""Client-certificate authentication through a real HTTPS listener (certificates from trustme)."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme

from kairos_core.config.errors import ConfigError


@dataclass
class Pki:
    """A CA trusted for clients, the gateway's server certificate, and a rogue CA."""

    ca: trustme.CA
    rogue: trustme.CA
    server_cert: Path
    server_key: Path
    client_ca: Path
    tmp: Path

    def client(
        self, *identities: str, ca: trustme.CA | None = None, **kwargs: Any
    ) -> ssl.SSLContext:
        """A client SSL context presenting a certificate for these identities."""
        context = ssl.create_default_context(cafile=str(self.client_ca))
        leaf = (ca or self.ca).issue_cert(*identities, **kwargs)
        leaf.configure_cert(context)
        return context

    def anonymous(self) -> ssl.SSLContext:
        """A client SSL context without a certificate."""
        return ssl.create_default_context(cafile=str(self.client_ca))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    tmp = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    server.cert_chain_pems[0].write_to_path(str(tmp / "server.pem"))
    for extra in server.cert_chain_pems[1:]:
        extra.write_to_path(str(tmp / "server.pem"), append=True)
    server.private_key_pem.write_to_path(str(tmp / "server.key"))
    ca.cert_pem.write_to_path(str(tmp / "ca.pem"))
    return Pki(ca, trustme.CA(), tmp / "server.pem", tmp / "server.key", tmp / "ca.pem", tmp)


def https_config(
    pki: Pki, backend_url: str, mtls: dict[str, Any] | None = None, client_cert: str = "optional"
) -> dict[str, Any]:
    return {
        "listeners": [
            {
                "host": "127.0.0.1",
                "port": 0,
                "tls": {
                    "certificates": [{"cert": str(pki.server_cert), "key": str(pki.server_key)}],
                    "client_ca": str(pki.client_ca),
                    "client_cert": client_cert,
                },
            }
        ],
        "consumers": [
            {"name": "alice", "metadata": {"team": "core"}},
            {"name": "svc-billing"},
        ],
        "routes": [
            {
                "prefix": "/",
                "upstream": {"backends": [{"url": backend_url}]},
                "plugins": [{"name": "mtls", "config": mtls or {}}],
            }
        ],
    }


async def fetch(
    http: aiohttp.ClientSession, url: str, context: ssl.SSLContext, **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    async with http.get(url + "/who", ssl=context, **kwargs) as response:
        return response.status, await response.json()


async def test_certificate_common_name_names_the_consumer(
    kairos_gateway: Any, echo_backend: Any, http: Any, pki: Pki
) -> None:
    mtls = {"forward_subject": "X-Client-Subject", "forward_fingerprint": "X-Client-Cert-SHA256"}
    gw = await kairos_gateway(https_config(pki, echo_backend.url, mtls))
    assert gw.url.startswith("https://")
    spoofed = {"X-Client-Subject": "CN=admin", "X-Client-Cert-SHA256": "00", "X-Consumer": "admin"}
    status, body = await fetch(
        http, gw.url, pki.client("alice@example.com", common_name="alice"), headers=spoofed
    )
    assert status == 200
    sent = body["headers"]
    assert sent["X-Consumer"] == "alice"
    assert "CN=alice" in sent["X-Client-Subject"]
    assert len(sent["X-Client-Cert-SHA256"]) == 64
    assert sent["X-Client-Cert-SHA256"] != "00"


async def test_no_certificate_gets_401(
    kairos_gateway: Any, echo_backend: Any, http: Any, pki: Pki
) -> None:
    gw = await kairos_gateway(https_config(pki, echo_backend.url))
    status, body = await fetch(http, gw.url, pki.anonymous())
    assert (status, body["message"]) == (401, "authentication required")
    assert echo_backend.records == []


async def test_certificate_from_another_ca_is_refused_at_the_handshake(
    kairos_gateway: Any, echo_backend: Any, http: Any, pki: Pki
) -> None:
    gw = await kairos_gateway(https_config(pki, echo_backend.url))
    rogue = pki.client("alice@example.com", common_name="alice", ca=pki.rogue)
    with pytest.raises(aiohttp.ClientError):
        await fetch(http, gw.url, rogue)
    assert echo_backend.records == []


async def test_required_client_cert_refuses_anonymous_handshakes(
    kairos_gateway: Any, echo_backend: Any, http: Any, pki: Pki
) -> None:
    gw = await kairos_gateway(https_config(pki, echo_backend.url, client_cert="required"))
    with pytest.raises(aiohttp.ClientError):
        await fetch(http, gw.url, pki.anonymous())
    status, body = await fetch(http, gw.url, pki.client("x.test", common_name="alice"))
    assert (status, body["headers"]["X-Consumer"]) == (200, "alice")


async def test_san_identities_and_mapping(
    kairos_gateway: Any, echo_backend: Any, http: Any, pki: Pki
) -> None:
    mtls = {
        "identity": ["san_email", "san_dns", "subject_cn"],
        "consumers": {"billing.internal": "svc-billing", "alice@example.com": "alice"},
    }
    gw = await kairos_gateway(https_config(pki, echo_backend.url, mtls))
    cases = [
        (pki.client("alice@example.com", common_name="somebody"), "alice"),
        (pki.client("other.internal", "billing.internal"), "svc-billing"),
        (pki.client("unmapped.internal", common_name="ignored"), "unmapped.internal"),
    ]
    for context, expected in cases:
        status, body = await fetch(http, gw.url, context)
        assert (status, body["headers"]["X-Consumer"]) == (200, expected)


async def test_unknown_or_unidentifiable_certificates_get_403(
    kairos_gateway: Any, echo_backend: Any, http: Any, pki: Pki
) -> None:
    mtls = {"require_configured_consumer": True}
    gw = await kairos_gateway(https_config(pki, echo_backend.url, mtls))
    status, body = await fetch(http, gw.url, pki.client("m.test", common_name="mallory"))
    assert status == 403
    assert body["type"] == "forbidden"
    assert body["message"] == "client certificate does not belong to a known consumer"
    status, body = await fetch(http, gw.url, pki.client("no-common-name.test"))
    assert (status, body["message"]) == (403, "client certificate has no usable identity")
    status, _ = await fetch(http, gw.url, pki.client("a.test", common_name="alice"))
    assert status == 200
    assert [r.headers["X-Consumer"] for r in echo_backend.records] == ["alice"]


async def test_plain_http_listener_has_no_certificate(
    kairos_gateway: Any, echo_backend: Any, http: Any
) -> None:
    route = {
        "prefix": "/",
        "upstream": {"backends": [{"url": echo_backend.url}]},
        "plugins": [{"name": "mtls"}],
    }
    gw = await kairos_gateway({"routes": [route]})
    async with http.get(gw.url + "/") as response:
        assert response.status == 401


async def test_certificate_expiring_during_a_keepalive_connection(
    kairos_gateway: Any, echo_backend: Any, pki: Pki
) -> None:
    gw = await kairos_gateway(https_config(pki, echo_backend.url))
    # Certificate times have whole seconds: 2 to 3 s for issuing, the handshake and a request.
    now = datetime.datetime.now(datetime.UTC)
    soon = (now + datetime.timedelta(seconds=3)).replace(microsecond=0)
    context = pki.client("a.test", common_name="alice", not_after=soon)
    connector = aiohttp.TCPConnector(limit=1, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        status, _ = await fetch(session, gw.url, context)
        assert status == 200
        await asyncio.sleep(
            max(0.0, (soon - datetime.datetime.now(datetime.UTC)).total_seconds()) + 0.2
        )
        status, body = await fetch(session, gw.url, context)  # same TLS connection, now expired
    assert (status, body["message"]) == (401, "client certificate expired")


async def test_mapping_to_undeclared_consumer_is_a_config_error(
    kairos_gateway: Any, echo_backend: Any, pki: Pki
) -> None:
    config = https_config(pki, echo_backend.url, {"consumers": {"x": "nobody"}})
    with pytest.raises(ConfigError) as caught:
        await kairos_gateway(config)
    assert "routes[0].plugins[0].config" in str(caught.value)
    assert "'nobody' not declared under `consumers`" in str(caught.value)
