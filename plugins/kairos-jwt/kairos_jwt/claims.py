"""Registered-claim checks (exp, nbf, iat, iss, aud, required) against an injectable clock."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from kairos_jwt import errors
from kairos_jwt.config import JwtConfig
from kairos_jwt.errors import TokenRejected

Clock = Callable[[], float]
"""Seconds since the epoch; `time.time` in production, a fixed value in tests."""


def decode_claims(payload: bytes) -> dict[str, Any]:
    """The JWT claims set: the JWS payload as a JSON object."""
    try:
        claims = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):  # deep nesting: RecursionError
        raise TokenRejected(errors.MALFORMED, "malformed token: payload is not JSON") from None
    if not isinstance(claims, dict):
        raise TokenRejected(errors.MALFORMED, "malformed token: claims are not a JSON object")
    return claims


def _as_set(value: str | list[str] | None) -> frozenset[str] | None:
    if value is None:
        return None
    return frozenset([value] if isinstance(value, str) else value)


def _number(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TokenRejected(errors.INVALID_CLAIM, f"claim {name} must be a number")
    return float(value)


class ClaimsPolicy:
    """Validates a claims set; returns the expiry time so caches never outlive it."""

    def __init__(self, config: JwtConfig, clock: Clock) -> None:
        self.clock = clock
        self.leeway = config.leeway
        self.required = tuple(config.required_claims)
        self.max_age = config.max_age
        self.issuers = _as_set(config.issuer)
        self.audiences = _as_set(config.audience)

    def check(self, claims: dict[str, Any], now: float | None = None) -> float | None:
        """Raise TokenRejected for the first failing check; return `exp` (or None)."""
        if now is None:
            now = self.clock()
        for name in self.required:
            if name not in claims:
                raise TokenRejected(errors.MISSING_CLAIM, f"token lacks the required claim {name}")
        leeway = self.leeway
        exp = _number(claims, "exp")
        if exp is not None and exp <= now - leeway:
            raise TokenRejected(errors.EXPIRED, "token expired")
        nbf = _number(claims, "nbf")
        if nbf is not None and nbf > now + leeway:
            raise TokenRejected(errors.NOT_YET_VALID, "token not yet valid (nbf)")
        iat = _number(claims, "iat")
        if iat is not None and iat > now + leeway:
            raise TokenRejected(errors.ISSUED_IN_FUTURE, "token issued in the future (iat)")
        if self.max_age is not None:
            if iat is None:
                raise TokenRejected(errors.MISSING_CLAIM, "token lacks the required claim iat")
            if now - iat > self.max_age + leeway:
                raise TokenRejected(errors.TOO_OLD, "token too old (iat)")
        if self.issuers is not None:
            iss = claims.get("iss")
            if not isinstance(iss, str) or iss not in self.issuers:
                raise TokenRejected(errors.BAD_ISSUER, "token issuer not accepted")
        aud = claims.get("aud")
        if self.audiences is not None:
            if isinstance(aud, str):
                accepted = aud in self.audiences
            elif isinstance(aud, list):
                accepted = any(isinstance(a, str) and a in self.audiences for a in aud)
            else:
                accepted = False
            if not accepted:
                raise TokenRejected(errors.BAD_AUDIENCE, "token audience not accepted")
        elif aud is not None:
            # RFC 7519 4.1.3: a recipient that does not identify itself in `aud` must reject.
            raise TokenRejected(errors.BAD_AUDIENCE, "token has an audience but none is configured")
        return exp
