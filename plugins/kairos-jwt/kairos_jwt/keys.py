"""Verification keys, each pinned to the algorithms it may verify (no HS-with-RSA-key confusion)."""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key
from jwt.algorithms import Algorithm as JwtAlgorithm
from jwt.algorithms import (
    ECAlgorithm,
    HMACAlgorithm,
    OKPAlgorithm,
    RSAAlgorithm,
    RSAPSSAlgorithm,
)

from kairos_jwt.config import ALL_ALGORITHMS, KeyConfig

ALGORITHMS: dict[str, JwtAlgorithm] = {
    "HS256": HMACAlgorithm(HMACAlgorithm.SHA256),
    "HS384": HMACAlgorithm(HMACAlgorithm.SHA384),
    "HS512": HMACAlgorithm(HMACAlgorithm.SHA512),
    "RS256": RSAAlgorithm(RSAAlgorithm.SHA256),
    "RS384": RSAAlgorithm(RSAAlgorithm.SHA384),
    "RS512": RSAAlgorithm(RSAAlgorithm.SHA512),
    "PS256": RSAPSSAlgorithm(RSAPSSAlgorithm.SHA256),
    "PS384": RSAPSSAlgorithm(RSAPSSAlgorithm.SHA384),
    "PS512": RSAPSSAlgorithm(RSAPSSAlgorithm.SHA512),
    "ES256": ECAlgorithm(ECAlgorithm.SHA256),
    "ES384": ECAlgorithm(ECAlgorithm.SHA384),
    "ES512": ECAlgorithm(ECAlgorithm.SHA512),
    "EdDSA": OKPAlgorithm(),
}
"""pyjwt's implementation of each supported algorithm ("none" is deliberately absent)."""

_HMAC_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}  # RFC 7518 section 3.2
_EC_CURVE_ALGORITHM = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_MIN_RSA_BITS = 2048

PublicKey = (
    bytes
    | rsa.RSAPublicKey
    | ec.EllipticCurvePublicKey
    | ed25519.Ed25519PublicKey
    | ed448.Ed448PublicKey
)


@dataclass(frozen=True, slots=True)
class PinnedKey:
    """A public key (or HMAC secret) and the only algorithms it may verify."""

    kid: str | None
    algorithms: frozenset[str]
    key: PublicKey
    origin: str
    """Where the key came from (`keys[0]`, a JWKS URL), for logs and config errors."""

    def verifies(self, alg: str, signing_input: bytes, signature: bytes) -> bool:
        """True when `signature` is a valid `alg` signature of `signing_input` by this key."""
        if alg not in self.algorithms:
            return False
        try:
            return bool(ALGORITHMS[alg].verify(signing_input, self.key, signature))
        except Exception:  # malformed signatures can make crypto backends raise
            return False


def compatible_algorithms(key: PublicKey) -> frozenset[str]:
    """Every algorithm that can sensibly be used with this kind of key."""
    if isinstance(key, bytes):
        return frozenset(a for a, n in _HMAC_MIN_BYTES.items() if len(key) >= n)
    if isinstance(key, rsa.RSAPublicKey):
        return _RSA_ALGORITHMS
    if isinstance(key, ec.EllipticCurvePublicKey):
        alg = _EC_CURVE_ALGORITHM.get(key.curve.name)
        return frozenset({alg}) if alg else frozenset()
    return frozenset({"EdDSA"})


def default_algorithms(key: PublicKey) -> frozenset[str]:
    """The algorithm a key verifies when the config names none."""
    if isinstance(key, bytes):
        return frozenset({"HS256"})
    if isinstance(key, rsa.RSAPublicKey):
        return frozenset({"RS256"})
    return compatible_algorithms(key)


def describe(key: PublicKey) -> str:
    """A short human name for the key type (never its material)."""
    if isinstance(key, bytes):
        return f"{len(key)}-byte HMAC secret"
    if isinstance(key, rsa.RSAPublicKey):
        return f"{key.key_size}-bit RSA key"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name} key"
    return "Ed25519 key" if isinstance(key, ed25519.Ed25519PublicKey) else "Ed448 key"


def pin(
    key: PublicKey,
    kid: str | None,
    requested: Iterable[str] | None,
    allowed: frozenset[str],
    origin: str,
) -> PinnedKey:
    """Pin `key` to the requested (or default) algorithms; ValueError when they do not fit."""
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < _MIN_RSA_BITS:
        raise ValueError(f"{origin}: {describe(key)} is too short (at least {_MIN_RSA_BITS} bits)")
    compatible = compatible_algorithms(key)
    wanted = frozenset(requested) if requested is not None else default_algorithms(key) & allowed
    unfit = sorted(wanted - compatible)
    if unfit:
        if isinstance(key, bytes) and set(unfit) <= set(_HMAC_MIN_BYTES):
            needs = ", ".join(f"{a} needs {_HMAC_MIN_BYTES[a]}" for a in unfit)
            raise ValueError(f"{origin}: {describe(key)} is too short ({needs} bytes)")
        raise ValueError(f"{origin}: {', '.join(unfit)} cannot be used with the {describe(key)}")
    outside = sorted(wanted - allowed)
    if outside:
        raise ValueError(f"{origin}: {', '.join(outside)} is not in the algorithms allow-list")
    if not wanted:
        raise ValueError(f"{origin}: no allowed algorithm fits the {describe(key)}")
    return PinnedKey(kid, wanted, key, origin)


def public_key_from_pem(data: bytes, origin: str) -> PublicKey:
    """A public key from a PEM public key, certificate or private key (its public half)."""
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            loaded: Any = x509.load_pem_x509_certificate(data).public_key()
        elif b"PRIVATE KEY-----" in data:
            loaded = load_pem_private_key(data, password=None).public_key()
        else:
            loaded = load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{origin}: not a usable PEM key or certificate ({exc})") from None
    return _checked_public(loaded, origin)


def public_key_from_jwk(jwk: Mapping[str, Any], origin: str) -> PublicKey:
    """The key of a JWK (oct, RSA, EC or OKP); private members are ignored."""
    kty = jwk.get("kty")
    try:
        if kty == "oct":
            return HMACAlgorithm.from_jwk(dict(jwk))
        if kty == "RSA":
            public = {k: jwk[k] for k in ("kty", "n", "e") if k in jwk}
            loaded: Any = RSAAlgorithm.from_jwk(public)
        elif kty == "EC":
            public = {k: jwk[k] for k in ("kty", "crv", "x", "y") if k in jwk}
            loaded = ECAlgorithm.from_jwk(public)
        elif kty == "OKP":
            public = {k: jwk[k] for k in ("kty", "crv", "x") if k in jwk}
            loaded = OKPAlgorithm.from_jwk(public)
        else:
            raise ValueError(f"unsupported key type {kty!r}")
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"{origin}: not a usable JWK ({exc})") from None
    return _checked_public(loaded, origin)


def _checked_public(loaded: Any, origin: str) -> PublicKey:
    if isinstance(
        loaded,
        (
            rsa.RSAPublicKey,
            ec.EllipticCurvePublicKey,
            ed25519.Ed25519PublicKey,
            ed448.Ed448PublicKey,
        ),
    ):
        return loaded
    raise ValueError(f"{origin}: unsupported key type {type(loaded).__name__}")


def _secret_bytes(text: str, encoding: str, origin: str) -> bytes:
    if encoding == "utf-8":
        return text.encode("utf-8")
    try:
        stripped = text.strip()
        padded = stripped + "=" * (-len(stripped) % 4)
        if encoding == "base64url":
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{origin}: secret is not valid {encoding} ({exc})") from None


def _env(name: str, origin: str) -> str:
    value = os.environ.get(name)
    if value is None:
        raise ValueError(f"{origin}: environment variable {name} is not set")
    return value


def _read(path: str, origin: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"{origin}: cannot read {path}: {exc.strerror or exc}") from None


def load_key(config: KeyConfig, allowed: frozenset[str], origin: str) -> PinnedKey:
    """Read one configured key from wherever it lives and pin it."""
    key: PublicKey
    if config.secret is not None:
        key = _secret_bytes(config.secret.get_secret_value(), config.secret_encoding, origin)
    elif config.secret_env is not None:
        key = _secret_bytes(_env(config.secret_env, origin), config.secret_encoding, origin)
    elif config.secret_file is not None:
        text = _read(config.secret_file, origin).decode("utf-8", "replace").strip()
        key = _secret_bytes(text, config.secret_encoding, origin)
    elif config.pem is not None:
        key = public_key_from_pem(config.pem.encode(), origin)
    elif config.pem_file is not None:
        key = public_key_from_pem(_read(config.pem_file, origin), origin)
    elif config.pem_env is not None:
        key = public_key_from_pem(_env(config.pem_env, origin).encode(), origin)
    else:
        assert config.jwk is not None
        key = public_key_from_jwk(config.jwk, origin)
    if isinstance(key, bytes) and not key:
        raise ValueError(f"{origin}: the secret is empty")
    kid = config.kid if config.kid is not None else _jwk_kid(config.jwk)
    requested = config.algorithms
    if requested is None and config.jwk is not None and isinstance(config.jwk.get("alg"), str):
        requested = [config.jwk["alg"]]
    return pin(key, kid, requested, allowed, origin)


def _jwk_kid(jwk: Mapping[str, Any] | None) -> str | None:
    kid = jwk.get("kid") if jwk else None
    return kid if isinstance(kid, str) else None


def pin_jwk(
    jwk: Mapping[str, Any], allowed: frozenset[str] = frozenset(ALL_ALGORITHMS), origin: str = "jwk"
) -> PinnedKey:
    """Pin a JWK as a JWKS would: its `alg` if given, else every compatible allowed algorithm."""
    key = public_key_from_jwk(jwk, origin)
    alg = jwk.get("alg")
    if isinstance(alg, str):
        requested: frozenset[str] = frozenset({alg})
        if alg not in ALGORITHMS:
            raise ValueError(f"{origin}: unsupported algorithm {alg!r}")
    else:
        requested = compatible_algorithms(key) & allowed
    return pin(key, _jwk_kid(jwk), requested, allowed, origin)
