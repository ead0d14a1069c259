"""The RFC 7515 Appendix A, RFC 8037 and RFC 7520 example JWSs verify with their published keys."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from kairos_jwt import JwtPlugin, TokenRejected, TokenVerifier, build_keyring, errors
from kairos_jwt.config import ALL_ALGORITHMS, JwtConfig
from kairos_jwt.jws import JwsVerifier
from kairos_jwt.keyring import KeyRing
from kairos_jwt.keys import pin_jwk

from kairos_core import Consumer

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "data" / "jws_vectors.json").read_text()
)["vectors"]
SIGNED = [v for v in VECTORS if v["key"] is not None]
CLAIM_SETS = [v for v in VECTORS if v["name"] in ("rfc7515-A.1", "rfc7515-A.2", "rfc7515-A.3")]
A1_CLAIMS = {"iss": "joe", "exp": 1300819380, "http://example.com/is_root": True}
BEFORE_A1_EXPIRY = 1300819380 - 60.0


def b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verifier_for(vector: dict[str, Any]) -> JwsVerifier:
    return JwsVerifier(KeyRing([pin_jwk(vector["key"])]), frozenset(ALL_ALGORITHMS))


def detached(vector: dict[str, Any]) -> bytes | None:
    return b64decode(vector["payload_b64"]) if vector.get("detached") else None


@pytest.mark.parametrize("vector", SIGNED, ids=[v["name"] for v in SIGNED])
def test_example_signature_verifies(vector: dict[str, Any]) -> None:
    parsed = verifier_for(vector).verify(vector["token"], detached(vector))
    assert parsed.alg == vector["alg"]
    assert parsed.payload == b64decode(vector["payload_b64"])


@pytest.mark.parametrize("vector", SIGNED, ids=[v["name"] for v in SIGNED])
def test_example_with_one_flipped_signature_bit_fails(vector: dict[str, Any]) -> None:
    head, payload, signature = vector["token"].split(".")
    raw = bytearray(b64decode(signature))
    raw[len(raw) // 2] ^= 0x01
    bad = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(TokenRejected) as caught:
        verifier_for(vector).verify(f"{head}.{payload}.{bad}", detached(vector))
    assert caught.value.reason == errors.BAD_SIGNATURE


def test_unsecured_example_a5_is_rejected() -> None:
    vector = next(v for v in VECTORS if v["name"] == "rfc7515-A.5")
    key = pin_jwk(SIGNED[0]["key"])
    with pytest.raises(TokenRejected) as caught:
        JwsVerifier(KeyRing([key]), frozenset(ALL_ALGORITHMS)).verify(vector["token"])
    assert caught.value.reason == errors.ALG_NONE


def claims_verifier(vector: dict[str, Any], clock: Any) -> TokenVerifier:
    config = JwtConfig.model_validate(
        {"keys": [{"jwk": vector["key"], "algorithms": [vector["alg"]]}], "consumer_claim": "iss"}
    )
    return TokenVerifier(config, build_keyring(config, None), {}, clock)


@pytest.mark.parametrize("vector", CLAIM_SETS, ids=[v["name"] for v in CLAIM_SETS])
def test_claims_examples_are_expired_today(vector: dict[str, Any]) -> None:
    import time

    with pytest.raises(TokenRejected) as caught:
        claims_verifier(vector, time.time).verify(vector["token"])
    assert caught.value.reason == errors.EXPIRED
    assert caught.value.description == "token expired"


@pytest.mark.parametrize("vector", CLAIM_SETS, ids=[v["name"] for v in CLAIM_SETS])
def test_claims_examples_verify_with_the_clock_set_before_expiry(vector: dict[str, Any]) -> None:
    verified = claims_verifier(vector, lambda: BEFORE_A1_EXPIRY).verify(vector["token"])
    assert dict(verified.claims) == A1_CLAIMS
    assert verified.consumer == Consumer("joe", configured=False)
    assert verified.expires == 1300819380  # cached at most until exp


@pytest.mark.parametrize("vector", CLAIM_SETS, ids=[v["name"] for v in CLAIM_SETS])
def test_claims_examples_expire_exactly_at_exp(vector: dict[str, Any]) -> None:
    with pytest.raises(TokenRejected) as caught:
        claims_verifier(vector, lambda: 1300819380.0).verify(vector["token"])
    assert caught.value.reason == errors.EXPIRED


async def test_rfc_a2_token_through_the_gateway_with_frozen_clock(
    kairos_gateway: Any, echo_backend: Any, http: Any, route_to: Any
) -> None:
    vector = next(v for v in CLAIM_SETS if v["name"] == "rfc7515-A.2")
    plugin = {
        "name": "jwt",
        "config": {
            "keys": [{"jwk": vector["key"], "algorithms": ["RS256"]}],
            "consumer_claim": "iss",
            "issuer": "joe",
        },
    }
    auth = {"Authorization": f"Bearer {vector['token']}"}
    frozen = await kairos_gateway(
        {"routes": [route_to(echo_backend.url, [plugin])]},
        plugins=[JwtPlugin(clock=lambda: BEFORE_A1_EXPIRY)],
    )
    async with http.get(frozen.url + "/a", headers=auth) as response:
        assert response.status == 200
        assert (await response.json())["headers"]["X-Consumer"] == "joe"
    live = await kairos_gateway(
        {"routes": [route_to(echo_backend.url, [plugin])]}, plugins=[JwtPlugin()]
    )
    async with http.get(live.url + "/a", headers=auth) as response:
        assert response.status == 401
        assert (await response.json())["message"] == "token expired"
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
        assert 'error_description="token expired"' in response.headers["WWW-Authenticate"]
