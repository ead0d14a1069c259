"""Fuzz target: token strings (arbitrary, or bytes spliced into a valid token) through verification."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from kairos_jwt import JwtConfig, TokenRejected, TokenVerifier, build_keyring

SECRET = "0123456789abcdef0123456789abcdef-kairos-fuzz-secret"
NOW = 1_700_000_000.0
_CONFIG = JwtConfig.model_validate({"keys": [{"secret": SECRET}], "cache": {"max_entries": 0}})
_VERIFIER = TokenVerifier(_CONFIG, build_keyring(_CONFIG, None), {}, lambda: NOW)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _sign(header: bytes, payload: bytes) -> str:
    signing_input = f"{_b64(header)}.{_b64(payload)}"
    mac = hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


VALID = _sign(b'{"alg":"HS256","typ":"JWT"}', json.dumps({"sub": "alice"}).encode())


def test_one_input(data: bytes) -> None:
    """Mode by first byte: raw token text, a validly signed fuzzed payload, or a spliced token."""
    mode, rest = (data[0] % 3, data[1:]) if data else (0, b"")
    if mode == 0:
        token = rest.decode("latin-1")
    elif mode == 1:
        token = _sign(b'{"alg":"HS256"}', rest)  # the claims parser sees any bytes
    else:
        cut = rest[0] % len(VALID) if rest else 0
        token = VALID[:cut] + rest[1:].decode("latin-1") + VALID[cut:]
    try:
        verified = _VERIFIER.verify(token)
    except TokenRejected as exc:
        assert exc.status in (401, 403), exc.status
        return
    assert mode == 1 or token == VALID, token  # only a correctly signed token may verify
    assert verified.consumer.name
