"""Compact JWS parsing and signature checks against pinned keys (RFC 7515)."""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kairos_jwt import errors
from kairos_jwt.errors import TokenRejected
from kairos_jwt.keys import PinnedKey

_COMPACT_RE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
_PLAIN_ALG_RE = re.compile(r"[A-Za-z0-9+_-]{1,16}")
_URLSAFE_TO_STD = bytes.maketrans(b"-_", b"+/")
_UNDERSTOOD_CRIT: frozenset[str] = frozenset()
"""Critical header extensions we implement: none, so any `crit` token is refused (RFC 7515 4.1.11)."""


def b64url_decode(segment: str) -> bytes:
    """Strict unpadded base64url decoding; ValueError on anything else."""
    raw = segment.encode("ascii")
    remainder = len(raw) % 4
    if remainder == 1:
        raise ValueError("impossible base64url length")
    if remainder:
        raw += b"=" * (4 - remainder)
    return binascii.a2b_base64(raw.translate(_URLSAFE_TO_STD), strict_mode=True)


@dataclass(frozen=True, slots=True)
class ParsedJws:
    """A compact JWS split and decoded (not yet verified)."""

    header: dict[str, Any]
    signing_input: bytes
    payload: bytes
    signature: bytes

    @property
    def alg(self) -> str:
        """The `alg` header (validated to be a string while parsing)."""
        return str(self.header["alg"])


def _malformed(what: str) -> TokenRejected:
    return TokenRejected(errors.MALFORMED, f"malformed token: {what}")


def parse_compact(token: str, detached_payload: bytes | None = None) -> ParsedJws:
    """Split `header.payload.signature`, decode each part and read the JOSE header."""
    if not _COMPACT_RE.fullmatch(token):
        raise _malformed("expected three base64url parts separated by dots")
    header_b64, payload_b64, signature_b64 = token.split(".")
    try:
        header = json.loads(b64url_decode(header_b64))
        signature = b64url_decode(signature_b64)
        if detached_payload is not None:
            if payload_b64:
                raise _malformed("payload given twice")
            payload = detached_payload
            payload_b64 = _b64url_encode(detached_payload)
        else:
            payload = b64url_decode(payload_b64)
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise _malformed("bad base64url or JSON header") from None
    if not isinstance(header, dict):
        raise _malformed("header is not a JSON object")
    alg = header.get("alg")
    if not isinstance(alg, str):
        raise _malformed("header has no alg")
    signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
    return ParsedJws(header, signing_input, payload, signature)


def _b64url_encode(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode().translate(_STD_TO_URLSAFE)


_STD_TO_URLSAFE = str.maketrans({"+": "-", "/": "_", "=": None})


class KeySource(Protocol):
    """Finds the pinned keys that may check a token with this `kid` and `alg`."""

    def candidates(self, kid: str | None, alg: str) -> Sequence[PinnedKey]:
        """Keys to try; raise UnknownKeyId or TokenRejected when there can be none."""
        ...


class JwsVerifier:
    """Checks a compact JWS: algorithm allowed, key found and pinned to it, signature valid."""

    def __init__(self, keys: KeySource, allowed: frozenset[str], require_kid: bool = False) -> None:
        self.keys = keys
        self.allowed = allowed
        self.require_kid = require_kid

    def verify(self, token: str, detached_payload: bytes | None = None) -> ParsedJws:
        """The parsed JWS if its signature is valid; TokenRejected (with a reason) if not."""
        parsed = parse_compact(token, detached_payload)
        header = parsed.header
        alg = parsed.alg
        if alg.lower() == "none":
            raise TokenRejected(errors.ALG_NONE, "unsecured tokens (alg none) are not accepted")
        if alg not in self.allowed:
            raise TokenRejected(errors.ALG_NOT_ALLOWED, f"algorithm {_shown(alg)} is not allowed")
        crit = header.get("crit")
        if crit is not None and (
            not isinstance(crit, list) or not set(map(str, crit)) <= _UNDERSTOOD_CRIT
        ):
            raise TokenRejected(
                errors.UNSUPPORTED_HEADER, "token has critical header parameters we do not support"
            )
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise _malformed("kid is not a string")
        if kid is None and self.require_kid:
            raise TokenRejected(errors.MISSING_KID, "token has no key id (kid)")
        for key in self.keys.candidates(kid, alg):
            if key.verifies(alg, parsed.signing_input, parsed.signature):
                return parsed
        raise TokenRejected(errors.BAD_SIGNATURE, "signature verification failed")


def _shown(alg: str) -> str:
    """The attacker-controlled alg, echoed only when it is short and plain."""
    return alg if _PLAIN_ALG_RE.fullmatch(alg) else "(invalid)"
