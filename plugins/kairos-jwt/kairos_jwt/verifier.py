"""Token to verified identity: JWS, claims, rules and consumer, with the verified-token cache."""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from kairos_core import Consumer
from kairos_jwt import errors
from kairos_jwt.cache import VerifiedToken, VerifiedTokenCache, token_digest
from kairos_jwt.claims import ClaimsPolicy, Clock, decode_claims
from kairos_jwt.config import JwtConfig
from kairos_jwt.errors import KeysUnavailable, TokenRejected, UnknownKeyId
from kairos_jwt.jws import JwsVerifier
from kairos_jwt.keyring import KeyRing
from kairos_jwt.rules import ClaimRules

MAX_CONSUMER_NAME = 256
"""Longest consumer name taken from a claim (it travels upstream in a header)."""


def header_value(value: Any) -> str:
    """A claim as a header value: printable strings as they are, anything else as compact JSON."""
    if isinstance(value, str) and value.isprintable():
        return value
    return json.dumps(value, separators=(",", ":"))


class TokenVerifier:
    """Verifies tokens for one authenticator; `verify` answers from the cache when it can."""

    def __init__(
        self,
        config: JwtConfig,
        keyring: KeyRing,
        consumers: Mapping[str, Consumer],
        clock: Clock,
    ) -> None:
        self.keyring = keyring
        self.clock = clock
        self.jws = JwsVerifier(keyring, frozenset(config.algorithms), config.require_kid)
        self.policy = ClaimsPolicy(config, clock)
        self.rules = ClaimRules(config.rules)
        self.consumers = consumers
        self.consumer_claim = config.consumer_claim
        self.require_configured = config.require_configured_consumer
        self.forward = tuple(config.forward_claims.items())
        self.max_length = config.max_token_length
        cache = config.cache
        self.cache = VerifiedTokenCache(cache.max_entries, cache.ttl) if cache.max_entries else None
        self._remote_keys = bool(keyring.remote)
        """Only remote (JWKS) key sets change at run time; static keys change by reload only."""

    def verify(self, token: str) -> VerifiedToken:
        """The verified token (cached or freshly checked); raises TokenRejected / UnknownKeyId."""
        now = self.clock()
        cache = self.cache
        if cache is None:
            return self.verify_uncached(token, now)
        digest = token_digest(token)
        version = self.keyring.version if self._remote_keys else 0
        entry = cache.get(digest, now, version)
        if entry is None:
            entry = self.verify_uncached(token, now, version)
            if entry.expires > now:
                cache.put(digest, entry)
        return entry

    async def verify_async(self, token: str) -> VerifiedToken:
        """`verify`, refetching remote keys once (rate-limited) when the kid is unknown."""
        try:
            return self.verify(token)
        except (UnknownKeyId, KeysUnavailable) as exc:
            missing = exc  # awaited outside the except block (compiled code: architecture.md)
        return await self.verify_after_refetch(token, missing)

    async def verify_after_refetch(self, token: str, error: TokenRejected) -> VerifiedToken:
        """After `error` (unknown kid, no keys yet): refetch remote keys, then verify again."""
        if not await self.keyring.refetch_for_unknown_kid():
            raise error
        return self.verify(token)

    def verify_uncached(
        self, token: str, now: float, key_version: int | None = None
    ) -> VerifiedToken:
        """Check everything from scratch."""
        if len(token) > self.max_length:
            raise TokenRejected(errors.MALFORMED, "malformed token: too long")
        if key_version is None:
            key_version = self.keyring.version
        parsed = self.jws.verify(token)
        claims = decode_claims(parsed.payload)
        exp = self.policy.check(claims, now)
        if self.rules:
            self.rules.check(claims)
        consumer = self._consumer(claims)
        forwarded = tuple(
            (header, header_value(claims[claim]))
            for claim, header in self.forward
            if claim in claims
        )
        ttl_end = now + (self.cache.ttl if self.cache is not None else 0.0)
        expires = ttl_end if exp is None else min(exp, ttl_end)
        max_age = self.policy.max_age
        if max_age is not None:  # checked: iat is a number; never serve past iat + max_age
            expires = min(expires, float(claims["iat"]) + max_age)
        nbf = claims.get("nbf")
        if isinstance(nbf, (int, float)) and nbf > now:
            expires = now  # valid only thanks to leeway: do not cache
        return VerifiedToken(MappingProxyType(claims), consumer, forwarded, expires, key_version)

    def _consumer(self, claims: dict[str, Any]) -> Consumer:
        value = claims.get(self.consumer_claim)
        if (
            isinstance(value, bool)
            or not isinstance(value, (str, int))
            or not str(value).isprintable()
            or not 0 < len(str(value)) <= MAX_CONSUMER_NAME
        ):
            raise TokenRejected(
                errors.MISSING_CLAIM,
                f"token lacks a usable {self.consumer_claim} claim to identify the consumer",
            )
        name = str(value)
        configured = self.consumers.get(name)
        if configured is not None:
            return configured
        if self.require_configured:
            raise TokenRejected(
                errors.UNKNOWN_CONSUMER, "token does not belong to a known consumer", status=403
            )
        return Consumer(name=name, configured=False)
