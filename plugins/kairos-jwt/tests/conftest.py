"""Fixtures for the kairos-jwt tests: generated key pairs and a token minting kit."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

SECRET = b"0123456789abcdef0123456789abcdef-kairos-test-secret"
"""A 51-byte HMAC secret (long enough for HS256 and HS384)."""


def public_pem(private_key: Any) -> str:
    """The PEM SubjectPublicKeyInfo of a private key."""
    return str(
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def public_jwk(private_key: Any, kid: str, alg: str | None = None) -> dict[str, Any]:
    """The public JWK of a private key, with kid (and alg)."""
    algorithm = jwt.get_algorithm_by_name(alg or "RS256")
    data: dict[str, Any] = algorithm.to_jwk(private_key.public_key(), as_dict=True)
    data["kid"] = kid
    if alg:
        data["alg"] = alg
    return data


@dataclass
class JwtKit:
    """Keys and helpers to mint tokens for tests."""

    rsa: rsa.RSAPrivateKey
    rsa_other: rsa.RSAPrivateKey
    ec256: ec.EllipticCurvePrivateKey
    ec384: ec.EllipticCurvePrivateKey
    ec521: ec.EllipticCurvePrivateKey
    ed25519: ed25519.Ed25519PrivateKey
    secret: bytes = SECRET
    now: float = field(default_factory=time.time)

    pem = staticmethod(public_pem)
    jwk = staticmethod(public_jwk)

    def claims(self, **extra: Any) -> dict[str, Any]:
        """A valid claims set (sub alice, exp in an hour) with overrides."""
        base: dict[str, Any] = {"sub": "alice", "iat": int(self.now), "exp": int(self.now) + 3600}
        base.update(extra)
        return {k: v for k, v in base.items() if v is not None}

    def mint(
        self,
        key: Any = None,
        alg: str = "HS256",
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """Sign a token (HS256 with the kit secret unless told otherwise)."""
        return jwt.encode(
            self.claims(**claims),
            self.secret if key is None else key,
            algorithm=alg,
            headers=headers,
        )


@pytest.fixture(scope="session")
def jwt_kit() -> JwtKit:
    """Generated once per session: RSA (two), EC P-256/384/521 and Ed25519 private keys."""
    return JwtKit(
        rsa=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        rsa_other=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ec256=ec.generate_private_key(ec.SECP256R1()),
        ec384=ec.generate_private_key(ec.SECP384R1()),
        ec521=ec.generate_private_key(ec.SECP521R1()),
        ed25519=ed25519.Ed25519PrivateKey.generate(),
    )


def echo_route(url: str, plugins: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A route to the echo backend at `url` with these plugins."""
    return {"prefix": "/", "upstream": {"backends": [{"url": url}]}, "plugins": plugins, **extra}


@pytest.fixture
def route_to() -> Any:
    """`route_to(backend_url, plugins, **route_fields)` builds a route config."""
    return echo_route
