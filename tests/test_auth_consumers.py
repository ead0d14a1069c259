"""Consumers across the auth plugins: any-of jwt/apikey/mtls, per-consumer plugin config."""

from __future__ import annotations

import ssl
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
import trustme
from kairos_apikey import hash_key

SECRET = "cross-plugin-test-secret-0123456789abcdef"
BOB_KEY = "kk_bob-cross-plugin-0123456789abcdef"
ALICE_KEY = "kk_alice-cross-plugin-0123456789abcd"


def token(sub: str, **claims: Any) -> str:
    now = int(time.time())
    return jwt.encode({"sub": sub, "iat": now, "exp": now + 600, **claims}, SECRET, "HS256")


def gateway_config(backend_url: str, **extra: Any) -> dict[str, Any]:
    """One route accepting jwt or apikey; alice has her own `headers` settings."""
    return {
        "consumers": [
            {
                "name": "alice",
                "metadata": {"plan": "gold"},
                "plugins": [
                    {"name": "headers", "config": {"request": {"set": {"X-Tier": "gold"}}}}
                ],
            },
            {"name": "bob"},
        ],
        "routes": [
            {
                "prefix": "/",
                "upstream": {"backends": [{"url": backend_url}]},
                "plugins": [
                    {
                        "name": "jwt",
                        "config": {
                            "keys": [{"secret": SECRET}],
                            "forward_claims": {"sub": "X-User"},
                        },
                    },
                    {
                        "name": "apikey",
                        "config": {
                            "keys": [
                                {"consumer": "bob", "hash": hash_key(BOB_KEY)},
                                {"consumer": "alice", "hash": hash_key(ALICE_KEY)},
                            ]
                        },
                    },
                    {"name": "headers", "config": {"request": {"set": {"X-Tier": "free"}}}},
                ],
            }
        ],
        **extra,
    }


async def call(http: Any, url: str, headers: dict[str, str]) -> tuple[int, dict[str, Any], Any]:
    async with http.get(url + "/r", headers=headers) as response:
        return response.status, await response.json(), response.headers


@pytest.fixture
async def gateway_url(kairos_gateway: Any, echo_backend: Any) -> str:
    gw = await kairos_gateway(gateway_config(echo_backend.url))
    return str(gw.url)


async def test_any_of_jwt_or_apikey(gateway_url: str, http: Any) -> None:
    bearer = {"Authorization": f"Bearer {token('alice')}"}
    status, body, _ = await call(http, gateway_url, bearer)
    assert (status, body["headers"]["X-Consumer"]) == (200, "alice")
    status, body, _ = await call(http, gateway_url, {"X-API-Key": BOB_KEY})
    assert (status, body["headers"]["X-Consumer"]) == (200, "bob")
    # An invalid token does not block a valid API key on the same request...
    status, body, _ = await call(
        http, gateway_url, {"Authorization": "Bearer nope.nope.nope", "X-API-Key": BOB_KEY}
    )
    assert (status, body["headers"]["X-Consumer"]) == (200, "bob")
    # ...and when everything fails, the first method's reason is given.
    status, body, headers = await call(
        http, gateway_url, {"Authorization": "Bearer nope.nope.nope", "X-API-Key": "wrong"}
    )
    assert status == 401
    assert body["message"].startswith("malformed token")
    assert 'error="invalid_token"' in headers["WWW-Authenticate"]
    status, body, headers = await call(http, gateway_url, {"X-API-Key": "wrong"})
    assert (status, body["message"]) == (401, "invalid API key")


async def test_no_credentials_lists_every_challenge(gateway_url: str, http: Any) -> None:
    status, body, headers = await call(http, gateway_url, {})
    assert (status, body["message"]) == (401, "authentication required")
    assert headers["WWW-Authenticate"] == (
        'Bearer realm="kairos", ApiKey realm="kairos", header="X-API-Key"'
    )


async def test_per_consumer_headers_config_whatever_the_method(gateway_url: str, http: Any) -> None:
    by_jwt = await call(http, gateway_url, {"Authorization": f"Bearer {token('alice')}"})
    by_key = await call(http, gateway_url, {"X-API-Key": ALICE_KEY})
    bob = await call(http, gateway_url, {"X-API-Key": BOB_KEY})
    carol = await call(http, gateway_url, {"Authorization": f"Bearer {token('carol')}"})
    assert by_jwt[1]["headers"]["X-Tier"] == "gold"
    assert by_key[1]["headers"]["X-Tier"] == "gold"
    assert bob[1]["headers"]["X-Tier"] == "free"
    assert carol[1]["headers"]["X-Tier"] == "free"
    assert carol[1]["headers"]["X-Consumer"] == "carol"  # not declared: default chain


async def test_jwt_claim_headers_cannot_be_spoofed_through_another_method(
    gateway_url: str, http: Any
) -> None:
    status, body, _ = await call(
        http, gateway_url, {"X-API-Key": BOB_KEY, "X-User": "alice", "X-Consumer": "alice"}
    )
    assert status == 200
    assert body["headers"]["X-Consumer"] == "bob"
    assert "X-User" not in body["headers"]


async def test_consumer_header_name_is_configurable(
    kairos_gateway: Any, echo_backend: Any, http: Any
) -> None:
    gw = await kairos_gateway(
        gateway_config(echo_backend.url, server={"consumer_header": "X-Authenticated-Consumer"})
    )
    status, body, _ = await call(http, gw.url, {"X-API-Key": BOB_KEY})
    assert status == 200
    assert body["headers"]["X-Authenticated-Consumer"] == "bob"
    assert "X-Consumer" not in body["headers"]


async def test_mtls_or_jwt_on_an_https_listener(
    kairos_gateway: Any, echo_backend: Any, http: Any, tmp_path: Path
) -> None:
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    server.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    listener = {
        "host": "127.0.0.1",
        "port": 0,
        "tls": {
            "certificates": [
                {"cert": str(tmp_path / "server.pem"), "key": str(tmp_path / "server.pem")}
            ],
            "client_ca": str(tmp_path / "ca.pem"),
            "client_cert": "optional",
        },
    }
    config = gateway_config(echo_backend.url, listeners=[listener])
    config["routes"][0]["plugins"].insert(0, {"name": "mtls"})
    gw = await kairos_gateway(config)
    anonymous = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    with_cert = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    ca.issue_cert("alice.test", common_name="alice").configure_cert(with_cert)
    async with http.get(gw.url + "/r", ssl=with_cert) as response:
        body = await response.json()
        assert (response.status, body["headers"]["X-Consumer"]) == (200, "alice")
        assert body["headers"]["X-Tier"] == "gold"
    bearer = {"Authorization": f"Bearer {token('bob')}"}
    async with http.get(gw.url + "/r", ssl=anonymous, headers=bearer) as response:
        body = await response.json()
        assert (response.status, body["headers"]["X-Consumer"]) == (200, "bob")
    async with http.get(gw.url + "/r", ssl=anonymous) as response:
        assert response.status == 401
