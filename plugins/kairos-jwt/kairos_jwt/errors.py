"""Why a token was refused: a stable reason code plus a description safe to show the client."""

from __future__ import annotations

MALFORMED = "malformed"
ALG_NONE = "alg_none"
ALG_NOT_ALLOWED = "alg_not_allowed"
ALG_KEY_MISMATCH = "alg_key_mismatch"
MISSING_KID = "missing_kid"
UNKNOWN_KID = "unknown_kid"
UNSUPPORTED_HEADER = "unsupported_header"
BAD_SIGNATURE = "bad_signature"
EXPIRED = "expired"
NOT_YET_VALID = "not_yet_valid"
ISSUED_IN_FUTURE = "issued_in_future"
TOO_OLD = "too_old"
BAD_ISSUER = "bad_issuer"
BAD_AUDIENCE = "bad_audience"
MISSING_CLAIM = "missing_claim"
INVALID_CLAIM = "invalid_claim"
UNKNOWN_CONSUMER = "unknown_consumer"
FORBIDDEN = "forbidden"
KEYS_UNAVAILABLE = "keys_unavailable"


class TokenRejected(Exception):
    """A token failed verification or authorization; `description` never contains key material."""

    def __init__(self, reason: str, description: str, status: int = 401) -> None:
        super().__init__(description)
        self.reason = reason
        self.description = description
        self.status = status


class UnknownKeyId(TokenRejected):
    """The token names a `kid` no loaded key has (a JWKS refetch may find it)."""

    def __init__(self) -> None:
        super().__init__(UNKNOWN_KID, "token signed with an unknown key id")


class KeysUnavailable(TokenRejected):
    """No key could be loaded yet (a JWKS URL never answered): 503, and worth a refetch."""

    def __init__(self) -> None:
        super().__init__(
            KEYS_UNAVAILABLE, "signing keys are not available yet; try again later", status=503
        )
