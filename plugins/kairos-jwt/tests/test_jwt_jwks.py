"""JWKS keys against a real local JWKS server that the tests start and change mid-test."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from typing import Any

import pytest
import trustme
from aiohttp import web
from kairos_jwt import JwtConfig, build_authenticator
from kairos_jwt.jwks import JwksError, parse_jwks

from kairos_core.config.loader import validate_config

AUD = {"aud": "api"}


@dataclass
class JwksServer:
    """A JWKS endpoint whose document and status the test controls; counts fetches."""

    keys: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    fetches: int = 0
    delay: float = 0.0
    raw: bytes | None = None
    url: str = ""

    def app(self) -> web.Application:
        async def serve(request: web.Request) -> web.Response:
            self.fetches += 1
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.status != 200:
                return web.Response(status=self.status, text="down")
            if self.raw is not None:
                return web.Response(body=self.raw, content_type="application/json")
            return web.json_response({"keys": self.keys})

        app = web.Application()
        app.router.add_get("/.well-known/jwks.json", serve)
        return app


@pytest.fixture
async def jwks_server(backend_factory: Any) -> JwksServer:
    server = JwksServer()
    backend = await backend_factory(server.app())
    server.url = backend.url + "/.well-known/jwks.json"
    return server


def jwks_plugin(url: str, **extra: Any) -> dict[str, Any]:
    jwks = {"url": url, "refresh_interval": 3600, "min_refetch_interval": 0.5}
    jwks.update(extra.pop("jwks", {}))
    return {"name": "jwt", "config": {"jwks": [jwks], "audience": "api", **extra}}


async def status_of(http: Any, url: str, token: str) -> tuple[int, str]:
    async with http.get(url + "/r", headers={"Authorization": f"Bearer {token}"}) as response:
        return response.status, (await response.json()).get("message", "")


async def test_rotation_without_restart(
    kairos_gateway: Any,
    echo_backend: Any,
    route_to: Any,
    http: Any,
    jwt_kit: Any,
    jwks_server: JwksServer,
) -> None:
    kit = jwt_kit
    jwks_server.keys = [kit.jwk(kit.rsa, "k1", "RS256")]
    plugin = jwks_plugin(jwks_server.url, jwks={"min_refetch_interval": 2.0})
    gw = await kairos_gateway({"routes": [route_to(echo_backend.url, [plugin])]})
    assert jwks_server.fetches == 1  # fetched at start, before traffic
    old = kit.mint(kit.rsa, "RS256", {"kid": "k1"}, **AUD)
    assert await status_of(http, gw.url, old) == (200, "")
    assert await status_of(http, gw.url, old) == (200, "")  # cached: no fetch
    assert jwks_server.fetches == 1

    # The issuer rotates: k1 is withdrawn, k2 (an EC key) is published.
    jwks_server.keys = [kit.jwk(kit.ec256, "k2", "ES256")]
    await asyncio.sleep(2.05)  # past min_refetch_interval since the fetch at start
    new = kit.mint(kit.ec256, "ES256", {"kid": "k2"}, **AUD)
    assert await status_of(http, gw.url, new) == (200, "")  # unknown kid -> one refetch
    assert jwks_server.fetches == 2
    # The old token was cached, but its key is gone: the cache entry is void.
    assert await status_of(http, gw.url, old) == (401, "token signed with an unknown key id")
    assert jwks_server.fetches == 2  # rate-limited: no second refetch within 2 s

    # Another rotation; many concurrent unknown-kid requests share a single refetch.
    jwks_server.keys = [kit.jwk(kit.ec256, "k2", "ES256"), kit.jwk(kit.ed25519, "k3", "EdDSA")]
    jwks_server.delay = 0.05
    await asyncio.sleep(2.05)
    fresh = [kit.mint(kit.ed25519, "EdDSA", {"kid": "k3"}, jti=str(i), **AUD) for i in range(20)]
    results = await asyncio.gather(*(status_of(http, gw.url, t) for t in fresh))
    assert results == [(200, "")] * 20
    assert jwks_server.fetches == 3

    stranger = kit.mint(kit.rsa_other, "RS256", {"kid": "k9"}, **AUD)
    assert await status_of(http, gw.url, stranger) == (401, "token signed with an unknown key id")
    assert jwks_server.fetches == 3
    await asyncio.sleep(2.05)
    assert await status_of(http, gw.url, stranger) == (401, "token signed with an unknown key id")
    assert jwks_server.fetches == 4  # at most one refetch per interval, never one per request


async def test_background_refresh_picks_up_changes(
    kairos_gateway: Any,
    echo_backend: Any,
    route_to: Any,
    http: Any,
    jwt_kit: Any,
    jwks_server: JwksServer,
) -> None:
    kit = jwt_kit
    jwks_server.keys = [kit.jwk(kit.rsa, "k1", "RS256")]
    plugin = jwks_plugin(
        jwks_server.url, jwks={"refresh_interval": 0.1, "min_refetch_interval": 60}
    )
    gw = await kairos_gateway({"routes": [route_to(echo_backend.url, [plugin])]})
    token = kit.mint(kit.rsa, "RS256", {"kid": "k1"}, **AUD)
    assert (await status_of(http, gw.url, token))[0] == 200
    jwks_server.keys = [kit.jwk(kit.rsa_other, "k1", "RS256")]  # same kid, new key material
    for _ in range(50):
        await asyncio.sleep(0.05)
        if jwks_server.fetches >= 3:
            break
    assert jwks_server.fetches >= 3
    assert await status_of(http, gw.url, token) == (401, "signature verification failed")
    replaced = kit.mint(kit.rsa_other, "RS256", {"kid": "k1"}, **AUD)
    assert (await status_of(http, gw.url, replaced))[0] == 200


async def test_unreachable_jwks_gives_503_until_it_answers(
    kairos_gateway: Any,
    echo_backend: Any,
    route_to: Any,
    http: Any,
    jwt_kit: Any,
    jwks_server: JwksServer,
) -> None:
    kit = jwt_kit
    jwks_server.status = 500
    gw = await kairos_gateway(
        {"routes": [route_to(echo_backend.url, [jwks_plugin(jwks_server.url)])]}
    )
    token = kit.mint(kit.rsa, "RS256", {"kid": "k1"}, **AUD)
    async with http.get(gw.url + "/r", headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 503
        body = await response.json()
    assert body["type"] == "auth_unavailable"
    assert body["message"] == "signing keys are not available yet; try again later"
    jwks_server.status = 200
    jwks_server.keys = [kit.jwk(kit.rsa, "k1", "RS256")]
    await asyncio.sleep(0.55)
    assert await status_of(http, gw.url, token) == (200, "")


async def test_one_fetcher_per_url_across_routes(
    kairos_gateway: Any, echo_backend: Any, http: Any, jwt_kit: Any, jwks_server: JwksServer
) -> None:
    kit = jwt_kit
    jwks_server.keys = [kit.jwk(kit.rsa, "k1", "RS256")]
    routes = [
        {
            "prefix": f"/r{i}",
            "upstream": {"backends": [{"url": echo_backend.url}]},
            "plugins": [jwks_plugin(jwks_server.url, rules=[{"claim": "sub", "equals": "alice"}])],
        }
        for i in range(3)
    ]
    gw = await kairos_gateway({"routes": routes})
    assert jwks_server.fetches == 1
    token = kit.mint(kit.rsa, "RS256", {"kid": "k1"}, **AUD)
    for i in range(3):
        async with http.get(f"{gw.url}/r{i}", headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 200


def test_jwks_document_with_unusable_keys_keeps_the_usable_ones(jwt_kit: Any) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    kit = jwt_kit
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    document = {
        "keys": [
            {**kit.jwk(kit.rsa, "enc", "RS256"), "use": "enc"},
            {**kit.jwk(kit.rsa, "wrap", "RS256"), "key_ops": ["wrapKey"]},
            kit.jwk(weak, "weak", "RS256"),
            {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
            {**kit.jwk(kit.rsa, "odd", "RS256"), "alg": "HS256"},
            "not-an-object",
            kit.jwk(kit.ec256, "good", "ES256"),
        ]
    }
    keys = parse_jwks(document, frozenset({"RS256", "ES256", "HS256"}), "test")
    assert [(k.kid, sorted(k.algorithms)) for k in keys] == [("good", ["ES256"])]
    with pytest.raises(JwksError):
        parse_jwks({"keys": [document["keys"][0]]}, frozenset({"RS256"}), "test")
    with pytest.raises(JwksError):
        parse_jwks({"nokeys": []}, frozenset({"RS256"}), "test")


async def test_close_stops_the_refresh_task(jwt_kit: Any, jwks_server: JwksServer) -> None:
    from kairos_core import GatewayServices

    jwks_server.keys = [jwt_kit.jwk(jwt_kit.rsa, "k1", "RS256")]
    loaded = validate_config({}, "<test>")
    services = GatewayServices(loaded.config, {}, {})
    from kairos_core import BuildContext

    context = BuildContext("route", "r", None, services)
    config = JwtConfig.model_validate(
        jwks_plugin(jwks_server.url, jwks={"refresh_interval": 0.05})["config"]
    )
    first = build_authenticator(config, context)
    second = build_authenticator(config, context)
    source = first.verifier.keyring.remote[0]
    assert source is second.verifier.keyring.remote[0]  # shared
    await first.start()
    await second.start()
    assert jwks_server.fetches == 1
    await first.close()
    await asyncio.sleep(0.4)
    assert jwks_server.fetches >= 3  # still refreshing for the second user
    await second.close()
    await asyncio.sleep(0.1)  # a refresh already on the wire at close() may still arrive
    stopped_at = jwks_server.fetches
    await asyncio.sleep(0.2)
    assert jwks_server.fetches == stopped_at
    assert source._task is None
    assert source._session is None


async def test_https_jwks_with_private_ca(
    kairos_gateway: Any, echo_backend: Any, route_to: Any, http: Any, jwt_kit: Any, tmp_path: Any
) -> None:
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server = JwksServer(keys=[jwt_kit.jwk(jwt_kit.rsa, "k1", "RS256")])
    runner = web.AppRunner(server.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx)
    await site.start()
    try:
        port = runner.addresses[0][1]
        url = f"https://127.0.0.1:{port}/.well-known/jwks.json"
        plugin = jwks_plugin(url, jwks={"ca_bundle": str(ca_file)})
        gw = await kairos_gateway({"routes": [route_to(echo_backend.url, [plugin])]})
        token = jwt_kit.mint(jwt_kit.rsa, "RS256", {"kid": "k1"}, **AUD)
        assert await status_of(http, gw.url, token) == (200, "")
        assert server.fetches == 1
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    "document",
    [b"\xff\xfe not utf-8", b"<html>not json</html>", b'{"keys": "nope"}', b"[]"],
    ids=["not-utf8", "not-json", "keys-not-a-list", "not-an-object"],
)
async def test_broken_jwks_documents_keep_the_last_good_keys(
    kairos_gateway: Any,
    echo_backend: Any,
    route_to: Any,
    http: Any,
    jwt_kit: Any,
    jwks_server: JwksServer,
    document: bytes,
) -> None:
    kit = jwt_kit
    jwks_server.keys = [kit.jwk(kit.rsa, "k1", "RS256")]
    plugin = jwks_plugin(jwks_server.url, jwks={"refresh_interval": 0.05})
    gw = await kairos_gateway({"routes": [route_to(echo_backend.url, [plugin])]})
    jwks_server.raw = document
    before = jwks_server.fetches
    for _ in range(50):
        await asyncio.sleep(0.05)
        if jwks_server.fetches >= before + 3:
            break
    assert jwks_server.fetches >= before + 3  # the refresh task survives bad documents
    token = kit.mint(kit.rsa, "RS256", {"kid": "k1"}, **AUD)
    assert await status_of(http, gw.url, token) == (200, "")
