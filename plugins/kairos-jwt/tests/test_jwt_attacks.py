"""Attack tokens are refused with 401 and the right reason, end to end through a real gateway."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from aiohttp import web

BAD_SIGNATURE = "signature verification failed"


def kit_pem(key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def kit_jwk(key: Any, kid: str, alg: str) -> dict[str, Any]:
    data: dict[str, Any] = jwt.get_algorithm_by_name(alg).to_jwk(key.public_key(), as_dict=True)
    return {**data, "kid": kid, "alg": alg}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_token(
    header: dict[str, Any], claims: dict[str, Any] | bytes, sign: Callable[[bytes], bytes]
) -> str:
    """A compact JWS built by hand (so any header, even a malicious one, can be written)."""
    payload = claims if isinstance(claims, bytes) else json.dumps(claims).encode()
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(payload)}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


def jwt_plugin(kit: Any, **extra: Any) -> dict[str, Any]:
    """jwt with an RSA key (rsa1), an EC P-256 key (ec1) and an HMAC secret (hs1)."""
    config: dict[str, Any] = {
        "keys": [
            {"kid": "rsa1", "pem": kit_pem(kit.rsa), "algorithms": ["RS256"]},
            {"kid": "ec1", "pem": kit_pem(kit.ec256)},
            {"kid": "hs1", "secret": kit.secret.decode(), "algorithms": ["HS256"]},
        ],
        "algorithms": ["RS256", "ES256", "HS256"],
        "audience": ["api", "other-api"],
        "issuer": "https://issuer.test",
    }
    config.update(extra)
    return {"name": "jwt", "config": config}


def good_claims(kit: Any, **extra: Any) -> dict[str, Any]:
    """Overrides that make kit.mint/kit.claims produce a token this gateway accepts."""
    return {"aud": "api", "iss": "https://issuer.test", **extra}


async def start(
    kairos_gateway: Any, echo_backend: Any, route_to: Any, plugin: dict[str, Any]
) -> str:
    gw = await kairos_gateway({"routes": [route_to(echo_backend.url, [plugin])]})
    return str(gw.url)


async def call(http: Any, url: str, token: str) -> tuple[int, dict[str, Any], str]:
    async with http.get(url + "/x", headers={"Authorization": f"Bearer {token}"}) as response:
        return response.status, await response.json(), response.headers.get("WWW-Authenticate", "")


def attack_tokens(kit: Any) -> dict[str, tuple[str, str]]:
    """name -> (token, expected message)."""
    claims = kit.claims(**good_claims(kit))
    rsa_pem = kit_pem(kit.rsa).encode()
    tokens: dict[str, tuple[str, str]] = {}
    none_message = "unsecured tokens (alg none) are not accepted"
    for casing in ("none", "None", "NONE", "nOnE"):
        tokens[f"alg-{casing}"] = (
            raw_token({"alg": casing, "typ": "JWT"}, claims, lambda _m: b""),
            none_message,
        )
        tokens[f"alg-{casing}-with-kid-and-signature"] = (
            raw_token({"alg": casing, "kid": "hs1"}, claims, lambda _m: b"x" * 32),
            none_message,
        )

    def hmac_with_rsa_pem(message: bytes) -> bytes:
        return hmac.new(rsa_pem, message, hashlib.sha256).digest()

    tokens["hs256-signed-with-rsa-public-key"] = (
        raw_token({"alg": "HS256", "kid": "rsa1"}, claims, hmac_with_rsa_pem),
        "algorithm HS256 is not allowed for the signing key",
    )
    tokens["hs256-signed-with-rsa-public-key-no-kid"] = (
        raw_token({"alg": "HS256"}, claims, hmac_with_rsa_pem),
        BAD_SIGNATURE,
    )
    tokens["alg-outside-allow-list"] = (
        kit.mint(kit.rsa, "RS512", {"kid": "rsa1"}, aud="api", iss="https://issuer.test"),
        "algorithm RS512 is not allowed",
    )
    tokens["unknown-alg"] = (
        raw_token({"alg": "HS999", "kid": "hs1"}, claims, lambda _m: b"sig"),
        "algorithm HS999 is not allowed",
    )
    tokens["wrong-kid"] = (
        kit.mint(kit.rsa, "RS256", {"kid": "nope"}, aud="api", iss="https://issuer.test"),
        "token signed with an unknown key id",
    )
    tokens["kid-of-a-key-of-another-type"] = (
        kit.mint(kit.rsa, "RS256", {"kid": "ec1"}, aud="api", iss="https://issuer.test"),
        "algorithm RS256 is not allowed for the signing key",
    )
    tokens["attacker-key-no-kid"] = (
        kit.mint(kit.rsa_other, "RS256", aud="api", iss="https://issuer.test"),
        BAD_SIGNATURE,
    )
    good = kit.mint(kit.rsa, "RS256", {"kid": "rsa1"}, aud="api", iss="https://issuer.test")
    head, _payload, signature = good.split(".")
    forged = b64(json.dumps({**claims, "sub": "admin"}).encode())
    tokens["tampered-payload"] = (f"{head}.{forged}.{signature}", BAD_SIGNATURE)
    tokens["truncated-signature"] = (f"{head}.{_payload}.{signature[:-4]}", BAD_SIGNATURE)
    tokens["expired"] = (
        kit.mint(kit.rsa, "RS256", {"kid": "rsa1"}, **good_claims(kit, exp=int(kit.now) - 120)),
        "token expired",
    )
    tokens["not-yet-valid"] = (
        kit.mint(kit.rsa, "RS256", {"kid": "rsa1"}, **good_claims(kit, nbf=int(kit.now) + 600)),
        "token not yet valid (nbf)",
    )
    tokens["issued-in-the-future"] = (
        kit.mint(kit.rsa, "RS256", {"kid": "rsa1"}, **good_claims(kit, iat=int(kit.now) + 600)),
        "token issued in the future (iat)",
    )
    tokens["wrong-audience"] = (
        kit.mint(kit.rsa, "RS256", {"kid": "rsa1"}, **good_claims(kit, aud="someone-else")),
        "token audience not accepted",
    )
    tokens["wrong-issuer"] = (
        kit.mint(kit.rsa, "RS256", {"kid": "rsa1"}, **good_claims(kit, iss="https://evil.test")),
        "token issuer not accepted",
    )
    tokens["missing-exp"] = (
        kit.mint(kit.rsa, "RS256", {"kid": "rsa1"}, **good_claims(kit, exp=None)),
        "token lacks the required claim exp",
    )
    tokens["non-numeric-exp"] = (
        kit.mint(kit.rsa, "RS256", {"kid": "rsa1"}, **good_claims(kit, exp="tomorrow")),
        "claim exp must be a number",
    )
    tokens["zero-ecdsa-signature"] = (
        raw_token({"alg": "ES256", "kid": "ec1"}, claims, lambda _m: bytes(64)),
        BAD_SIGNATURE,
    )
    tokens["critical-header"] = (
        kit.mint(kit.rsa, "RS256", {"kid": "rsa1", "crit": ["exp"]}, **good_claims(kit)),
        "token has critical header parameters we do not support",
    )
    tokens["garbage"] = (
        "not-a-token",
        "malformed token: expected three base64url parts separated by dots",
    )
    tokens["header-not-json"] = (
        f"{b64(b'{nope')}.{b64(b'{}')}.{b64(b'sig')}",
        "malformed token: bad base64url or JSON header",
    )
    tokens["payload-not-json"] = (
        raw_token(
            {"alg": "HS256", "kid": "hs1"},
            b"[1,2",
            lambda m: hmac.new(kit.secret, m, hashlib.sha256).digest(),
        ),
        "malformed token: payload is not JSON",
    )
    return tokens


ATTACKS = [
    "alg-none",
    "alg-None",
    "alg-NONE",
    "alg-nOnE",
    "alg-none-with-kid-and-signature",
    "alg-NONE-with-kid-and-signature",
    "hs256-signed-with-rsa-public-key",
    "hs256-signed-with-rsa-public-key-no-kid",
    "alg-outside-allow-list",
    "unknown-alg",
    "wrong-kid",
    "kid-of-a-key-of-another-type",
    "attacker-key-no-kid",
    "tampered-payload",
    "truncated-signature",
    "expired",
    "not-yet-valid",
    "issued-in-the-future",
    "wrong-audience",
    "wrong-issuer",
    "missing-exp",
    "non-numeric-exp",
    "zero-ecdsa-signature",
    "critical-header",
    "garbage",
    "header-not-json",
    "payload-not-json",
]


@pytest.fixture
async def attack_gateway(
    kairos_gateway: Any, echo_backend: Any, route_to: Any, jwt_kit: Any
) -> str:
    return await start(kairos_gateway, echo_backend, route_to, jwt_plugin(jwt_kit))


async def test_every_attack_is_refused(
    attack_gateway: str, http: Any, jwt_kit: Any, echo_backend: Any
) -> None:
    tokens = attack_tokens(jwt_kit)
    assert set(ATTACKS) <= set(tokens)
    for name in tokens:
        token, message = tokens[name]
        status, body, challenge = await call(http, attack_gateway, token)
        assert (name, status, body.get("message")) == (name, 401, message), body
        assert body["type"] == "invalid_token"
        assert challenge.startswith(
            'Bearer realm="kairos", error="invalid_token", error_description='
        )
        assert "PUBLIC KEY" not in json.dumps(body)
        assert jwt_kit.secret.decode() not in json.dumps(body)
    assert echo_backend.records == []


@pytest.mark.parametrize(
    ("alg", "key_name", "kid"),
    [("RS256", "rsa", "rsa1"), ("ES256", "ec256", "ec1"), ("HS256", None, "hs1")],
)
async def test_the_legitimate_tokens_pass(
    attack_gateway: str, http: Any, jwt_kit: Any, alg: str, key_name: str | None, kid: str
) -> None:
    key = getattr(jwt_kit, key_name) if key_name else None
    for headers in ({"kid": kid}, None):
        token = jwt_kit.mint(key, alg, headers, **good_claims(jwt_kit))
        status, body, _ = await call(http, attack_gateway, token)
        assert status == 200, body
        assert body["headers"]["X-Consumer"] == "alice"


async def test_expired_token_within_leeway_passes(
    kairos_gateway: Any, echo_backend: Any, route_to: Any, http: Any, jwt_kit: Any
) -> None:
    url = await start(kairos_gateway, echo_backend, route_to, jwt_plugin(jwt_kit, leeway=300))
    for extra in ({"exp": int(jwt_kit.now) - 120}, {"nbf": int(jwt_kit.now) + 120}):
        token = jwt_kit.mint(jwt_kit.rsa, "RS256", {"kid": "rsa1"}, **good_claims(jwt_kit, **extra))
        status, _, _ = await call(http, url, token)
        assert status == 200


async def test_audience_list_in_token_matches_any(
    attack_gateway: str, http: Any, jwt_kit: Any
) -> None:
    token = jwt_kit.mint(
        jwt_kit.rsa, "RS256", {"kid": "rsa1"}, **good_claims(jwt_kit, aud=["x", "other-api"])
    )
    assert (await call(http, attack_gateway, token))[0] == 200


async def test_require_kid_refuses_tokens_without_kid(
    kairos_gateway: Any, echo_backend: Any, route_to: Any, http: Any, jwt_kit: Any
) -> None:
    url = await start(kairos_gateway, echo_backend, route_to, jwt_plugin(jwt_kit, require_kid=True))
    token = jwt_kit.mint(jwt_kit.rsa, "RS256", **good_claims(jwt_kit))
    status, body, _ = await call(http, url, token)
    assert (status, body["message"]) == (401, "token has no key id (kid)")


@pytest.mark.parametrize("header", ["jwk", "jku", "x5u", "x5c"])
async def test_embedded_key_headers_are_ignored(
    attack_gateway: str,
    http: Any,
    jwt_kit: Any,
    backend_factory: Any,
    header: str,
) -> None:
    hits: list[str] = []
    attacker_jwks = {"keys": [kit_jwk(jwt_kit.rsa_other, "rsa1", "RS256")]}

    async def serve(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.json_response(attacker_jwks)

    app = web.Application()
    app.router.add_get("/{tail:.*}", serve)
    attacker = await backend_factory(app)
    values: dict[str, Any] = {
        "jwk": kit_jwk(jwt_kit.rsa_other, "rsa1", "RS256"),
        "jku": attacker.url + "/jwks.json",
        "x5u": attacker.url + "/cert.pem",
        "x5c": ["MIIBattackercert"],
    }
    for kid in ("rsa1", None):
        headers = {header: values[header], **({"kid": kid} if kid else {})}
        token = jwt_kit.mint(jwt_kit.rsa_other, "RS256", headers, **good_claims(jwt_kit))
        status, body, _ = await call(http, attack_gateway, token)
        assert (status, body["message"]) == (401, BAD_SIGNATURE)
    assert hits == []


async def test_token_parts_are_strict_base64url(
    attack_gateway: str, http: Any, jwt_kit: Any
) -> None:
    token = jwt_kit.mint(jwt_kit.rsa, "RS256", {"kid": "rsa1"}, **good_claims(jwt_kit))
    assert (await call(http, attack_gateway, token))[0] == 200
    head, payload, signature = token.split(".")
    for bad in (
        f"{head}.{payload}.{signature}=",
        f"{head}.{payload}.{signature}.x",
        f"{head}.{payload}+.{signature}",
    ):
        status, body, _ = await call(http, attack_gateway, bad)
        assert status == 401
        assert body["message"].startswith("malformed token")


async def test_oversized_token_is_refused_unread(
    kairos_gateway: Any, echo_backend: Any, route_to: Any, http: Any, jwt_kit: Any
) -> None:
    url = await start(
        kairos_gateway, echo_backend, route_to, jwt_plugin(jwt_kit, max_token_length=256)
    )
    token = jwt_kit.mint(
        jwt_kit.rsa, "RS256", {"kid": "rsa1"}, **good_claims(jwt_kit, pad="x" * 300)
    )
    status, body, _ = await call(http, url, token)
    assert (status, body["message"]) == (401, "malformed token: too long")


def test_pyjwt_itself_refuses_pem_as_hmac_secret(jwt_kit: Any) -> None:
    """Sanity check on the dependency: the confusion token above had to be built by hand."""
    with pytest.raises(jwt.InvalidKeyError):
        jwt.encode({"a": 1}, kit_pem(jwt_kit.rsa), algorithm="HS256")
