"""Key loading (inline, files, environment, JWK, certificates) and config errors that name the field."""

from __future__ import annotations

import base64
import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from kairos_core.config.errors import ConfigError


def self_signed_pem(private_key: Any) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "issuer.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(private_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


async def start_with(kairos_gateway: Any, url: str, config: dict[str, Any]) -> Any:
    route = {"prefix": "/", "upstream": {"backends": [{"url": url}]}}
    return await kairos_gateway(
        {"routes": [{**route, "plugins": [{"name": "jwt", "config": config}]}]}
    )


async def test_keys_from_every_kind_of_source(
    kairos_gateway: Any,
    echo_backend: Any,
    http: Any,
    jwt_kit: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kit = jwt_kit
    (tmp_path / "rsa.pem").write_text(kit.pem(kit.rsa))
    (tmp_path / "cert.pem").write_bytes(self_signed_pem(kit.ec384))
    (tmp_path / "secret.txt").write_text(base64.b64encode(b"s" * 48).decode() + "\n")
    monkeypatch.setenv("KAIROS_TEST_JWT_SECRET", "e" * 64)
    monkeypatch.setenv("KAIROS_TEST_JWT_PEM", kit.pem(kit.ec521))
    keys = [
        {"kid": "file", "pem_file": str(tmp_path / "rsa.pem"), "algorithms": ["RS256", "PS256"]},
        {"kid": "cert", "pem_file": str(tmp_path / "cert.pem")},
        {
            "kid": "sfile",
            "secret_file": str(tmp_path / "secret.txt"),
            "secret_encoding": "base64",
            "algorithms": ["HS384"],
        },
        {"kid": "senv", "secret_env": "KAIROS_TEST_JWT_SECRET", "algorithms": ["HS512"]},
        {"kid": "penv", "pem_env": "KAIROS_TEST_JWT_PEM"},
        {"jwk": kit.jwk(kit.ed25519, "okp", "EdDSA")},
        {"kid": "inline", "pem": kit.pem(kit.ec256)},
    ]
    gw = await start_with(kairos_gateway, echo_backend.url, {"keys": keys})
    cases = [
        (kit.rsa, "RS256", "file"),
        (kit.rsa, "PS256", "file"),
        (kit.ec384, "ES384", "cert"),
        (b"s" * 48, "HS384", "sfile"),
        (b"e" * 64, "HS512", "senv"),
        (kit.ec521, "ES512", "penv"),
        (kit.ed25519, "EdDSA", "okp"),
        (kit.ec256, "ES256", "inline"),
    ]
    for key, alg, kid in cases:
        token = kit.mint(key, alg, {"kid": kid})
        async with http.get(gw.url + "/", headers={"Authorization": f"Bearer {token}"}) as r:
            assert (kid, alg, r.status) == (kid, alg, 200)
    pinned = kit.mint(kit.rsa, "RS512", {"kid": "file"})  # the key allows RS256 and PS256 only
    async with http.get(gw.url + "/", headers={"Authorization": f"Bearer {pinned}"}) as r:
        assert r.status == 401
        assert (await r.json())["message"] == "algorithm RS512 is not allowed for the signing key"


BAD_CONFIGS: list[tuple[str, dict[str, Any], str]] = [
    ("no keys", {}, "configure at least one key (`keys`) or JWKS URL (`jwks`)"),
    (
        "alg none",
        {"keys": [{"secret": "x" * 32}], "algorithms": ["none"]},
        "algorithms[0]: Input should be 'HS256'",
    ),
    (
        "two key sources",
        {"keys": [{"secret": "x" * 32, "secret_env": "X"}]},
        "give exactly one of secret, secret_env",
    ),
    ("short secret", {"keys": [{"secret": "short"}]}, "keys[0]: 5-byte HMAC secret is too short"),
    (
        "secret too short for HS512",
        {"keys": [{"secret": "x" * 32, "algorithms": ["HS512"]}]},
        "HS512 needs 64 bytes",
    ),
    (
        "unset env",
        {"keys": [{"secret_env": "KAIROS_TEST_SURELY_UNSET"}]},
        "environment variable KAIROS_TEST_SURELY_UNSET is not set",
    ),
    ("missing file", {"keys": [{"pem_file": "/nonexistent/key.pem"}]}, "cannot read"),
    ("not a pem", {"keys": [{"pem": "hello"}]}, "not a usable PEM key or certificate"),
    ("bad base64", {"keys": [{"secret": "@@@", "secret_encoding": "base64"}]}, "not valid base64"),
    (
        "header without name",
        {"keys": [{"secret": "x" * 32}], "token_sources": [{"source": "header"}]},
        "a header token source needs `name`",
    ),
    (
        "forward to Host",
        {"keys": [{"secret": "x" * 32}], "forward_claims": {"sub": "Host"}},
        "'Host' is not a usable header name",
    ),
    (
        "rule with two tests",
        {"keys": [{"secret": "x" * 32}], "rules": [{"claim": "a", "equals": 1, "one_of": [1]}]},
        "give exactly one of equals, one_of",
    ),
    ("unknown option", {"keys": [{"secret": "x" * 32}], "audiense": "x"}, "audiense"),
    ("jwks not http", {"jwks": [{"url": "file:///etc/passwd"}]}, "expected an http:// or https://"),
]


@pytest.mark.parametrize(
    ("what", "config", "message"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS]
)
async def test_bad_config_is_a_clear_error(
    kairos_gateway: Any, echo_backend: Any, what: str, config: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        await start_with(kairos_gateway, echo_backend.url, config)
    text = str(caught.value)
    assert "<test config>" in text
    assert "routes[0].plugins[0].config" in text
    assert message in text


@pytest.mark.parametrize(
    ("alg", "key_name", "expected"),
    [
        ("HS256", "rsa", "HS256 cannot be used with the 2048-bit RSA key"),
        ("ES256", "rsa", "ES256 cannot be used with the 2048-bit RSA key"),
        ("ES384", "ec256", "ES384 cannot be used with the EC secp256r1 key"),
        ("RS256", "ec256", "RS256 cannot be used with the EC secp256r1 key"),
        ("HS256", "ed25519", "HS256 cannot be used with the Ed25519 key"),
    ],
)
async def test_keys_cannot_be_pinned_to_foreign_algorithms(
    kairos_gateway: Any, echo_backend: Any, jwt_kit: Any, alg: str, key_name: str, expected: str
) -> None:
    pem = jwt_kit.pem(getattr(jwt_kit, key_name))
    with pytest.raises(ConfigError) as caught:
        await start_with(
            kairos_gateway, echo_backend.url, {"keys": [{"pem": pem, "algorithms": [alg]}]}
        )
    assert f"keys[0]: {expected}" in str(caught.value)


async def test_key_algorithm_outside_allow_list(
    kairos_gateway: Any, echo_backend: Any, jwt_kit: Any
) -> None:
    config = {
        "keys": [{"pem": jwt_kit.pem(jwt_kit.rsa), "algorithms": ["PS256"]}],
        "algorithms": ["RS256"],
    }
    with pytest.raises(ConfigError) as caught:
        await start_with(kairos_gateway, echo_backend.url, config)
    assert "keys[0]: PS256 is not in the algorithms allow-list" in str(caught.value)
