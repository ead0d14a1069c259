"""API keys: generating them, hashing them (SHA-256) and parsing the stored hashes."""

from __future__ import annotations

import hashlib
import re
import secrets

HASH_PREFIX = "sha256:"
_HEX_RE = re.compile(r"[0-9a-f]{64}")
MAX_KEY_LENGTH = 512
"""Longer presented keys are refused without hashing them."""


def hash_key(key: str) -> str:
    """The stored form of a key: `sha256:` and 64 hex digits."""
    return HASH_PREFIX + hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_digest(key: str) -> bytes:
    """The raw SHA-256 digest of a presented key (what lookups compare)."""
    return hashlib.sha256(key.encode("utf-8")).digest()


def parse_hash(text: str) -> bytes:
    """The digest bytes of a stored hash (`sha256:<hex>` or bare hex); ValueError otherwise."""
    value = text.strip().lower()
    value = value.removeprefix(HASH_PREFIX)
    if not _HEX_RE.fullmatch(value):
        raise ValueError(
            "not a SHA-256 hash (expected `sha256:` and 64 hex digits; "
            "make one with `kairos apikey hash`)"
        )
    return bytes.fromhex(value)


def generate_key(nbytes: int = 32, prefix: str = "") -> str:
    """A new random key: `prefix` plus `nbytes` of randomness, base64url-encoded."""
    if nbytes < 16:
        raise ValueError("use at least 16 random bytes")
    return prefix + secrets.token_urlsafe(nbytes)
