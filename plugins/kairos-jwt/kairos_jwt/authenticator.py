"""The `jwt` authenticator: find the token, verify it (cached), map it to a consumer."""

from __future__ import annotations

import time

from kairos_core import AuthDeferred, AuthFailure, BuildContext, Consumer, RequestContext
from kairos_jwt.cache import VerifiedToken
from kairos_jwt.claims import Clock
from kairos_jwt.config import ALL_ALGORITHMS, JwtConfig
from kairos_jwt.errors import KeysUnavailable, TokenRejected, UnknownKeyId
from kairos_jwt.jwks import JwksSource, shared_source
from kairos_jwt.keyring import KeyRing
from kairos_jwt.keys import load_key
from kairos_jwt.sources import Stripper, TokenLocator
from kairos_jwt.verifier import TokenVerifier


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class JwtAuthenticator:
    """Accepts a request whose token verifies; sets ctx.claims and forwards chosen claims."""

    def __init__(self, config: JwtConfig, verifier: TokenVerifier) -> None:
        self.verifier = verifier
        self.challenge = f"Bearer realm={_quoted(config.realm)}"
        self._locator = TokenLocator(config.token_sources)
        self.gateway_headers = tuple(config.forward_claims.values())
        """Removed from requests by the core before any authenticator runs."""
        self._strip = config.strip_credential

    async def start(self) -> None:
        """Fetch JWKS keys and start refreshing them."""
        await self.verifier.keyring.start()

    async def close(self) -> None:
        """Stop background key refreshes."""
        await self.verifier.keyring.close()

    def authenticate_now(self, ctx: RequestContext) -> Consumer | None:
        """`authenticate` without awaiting; AuthDeferred when remote keys must be fetched first."""
        try:
            found = self._locator.find(ctx)
            if found is None:
                return None
            token, strip = found
            verified = self.verifier.verify(token)
        except (UnknownKeyId, KeysUnavailable) as exc:
            if self.verifier.keyring.remote:
                raise AuthDeferred() from None  # `authenticate` refetches the JWKS, then retries
            raise self._failure(exc) from None
        except TokenRejected as rejected:  # not `exc`: mypyc types a name once per function
            raise self._failure(rejected) from None
        return self._accept(ctx, verified, strip)

    async def authenticate(self, ctx: RequestContext) -> Consumer | None:
        """The token's consumer; None without a token; AuthFailure when it is not acceptable."""
        try:
            found = self._locator.find(ctx)
            if found is None:
                return None
            token, strip = found
            verified = await self.verifier.verify_async(token)
        except TokenRejected as rejected:  # not `exc`: mypyc types a name once per function
            raise self._failure(rejected) from None
        return self._accept(ctx, verified, strip)

    def _accept(self, ctx: RequestContext, verified: VerifiedToken, strip: Stripper) -> Consumer:
        if self._strip:
            strip(ctx)
        ctx.claims = verified.claims
        headers = ctx.headers
        for name, value in verified.forwarded:
            headers[name] = value
        return verified.consumer

    def _failure(self, exc: TokenRejected) -> AuthFailure:
        if exc.status == 403:
            challenge = (
                f'{self.challenge}, error="insufficient_scope", '
                f"error_description={_quoted(exc.description)}"
            )
            return AuthFailure(exc.description, 403, challenge, "forbidden")
        if exc.status == 401:
            challenge = (
                f'{self.challenge}, error="invalid_token", '
                f"error_description={_quoted(exc.description)}"
            )
            return AuthFailure(exc.description, 401, challenge, "invalid_token")
        return AuthFailure(exc.description, exc.status, None, "auth_unavailable")


def build_keyring(config: JwtConfig, context: BuildContext | None) -> KeyRing:
    """Load static keys now (errors name the key) and attach the JWKS sources."""
    allowed = frozenset(config.algorithms)
    static = [load_key(key, allowed, f"keys[{i}]") for i, key in enumerate(config.keys)]
    remote: list[JwksSource] = []
    for index, jwks in enumerate(config.jwks):
        source_allowed = allowed & frozenset(jwks.algorithms or ALL_ALGORITHMS)
        if not source_allowed:
            raise ValueError(f"jwks[{index}]: none of its algorithms is in the allow-list")
        if context is not None:
            remote.append(shared_source(context.services.shared, jwks, source_allowed))
        else:
            remote.append(JwksSource(jwks, source_allowed))
    return KeyRing(static, remote)


def build_authenticator(
    config: JwtConfig, context: BuildContext, clock: Clock = time.time
) -> JwtAuthenticator:
    """Build one `jwt` authenticator (per route or global entry) at config load."""
    keyring = build_keyring(config, context)
    consumers = context.services.consumers
    verifier = TokenVerifier(config, keyring, consumers, clock)
    return JwtAuthenticator(config, verifier)
