"""kairos-example-auth: authenticate requests by a shared secret sent in a header."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from kairos_core import (
    AuthFailure,
    AuthPlugin,
    BuildContext,
    Consumer,
    RequestContext,
    hookimpl,
)


# --8<-- [start:config]
class SecretEntry(BaseModel):
    """One shared secret and the consumer it identifies."""

    model_config = ConfigDict(extra="forbid")
    consumer: str = Field(description="Name of the consumer this secret authenticates as.")
    secret: SecretStr = Field(
        description="At least 16 characters; write `${ENV_VAR}` to keep it out of the file."
    )

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("a shared secret must be at least 16 characters long")
        return value


class SharedSecretConfig(BaseModel):
    """Settings of the `shared-secret` authenticator."""

    model_config = ConfigDict(extra="forbid")
    header: str = Field("X-Shared-Secret", description="Request header that carries the secret.")
    secrets: list[SecretEntry] = Field(min_length=1, description="Accepted secrets.")
    forward: bool = Field(
        False, description="Pass the secret header on to the backend (by default it is removed)."
    )


# --8<-- [end:config]


# --8<-- [start:authenticator]
class SharedSecretAuthenticator:
    """Finds the consumer whose secret the request presents (constant-time comparisons)."""

    def __init__(
        self, header: str, secrets: Sequence[tuple[bytes, Consumer]], forward: bool
    ) -> None:
        self.header = header
        self.challenge = f'SharedSecret header="{header}"'
        self._secrets = tuple(secrets)
        self._forward = forward

    async def authenticate(self, ctx: RequestContext) -> Consumer | None:
        """The consumer, None when the header is absent, or AuthFailure for a wrong secret."""
        values = ctx.headers.getall(self.header, [])
        if not values:
            return None  # no credential of this kind: another authenticator may accept
        if not self._forward:
            ctx.headers.popall(self.header)
        if len(values) > 1:
            raise AuthFailure(
                f"send one {self.header} header, not {len(values)}",
                status=400,
                error_type="bad_request",
            )
        presented = values[0].encode()
        found: Consumer | None = None
        for secret, consumer in self._secrets:  # compare with every secret: no early exit
            if hmac.compare_digest(presented, secret) and found is None:
                found = consumer
        if found is None:
            raise AuthFailure("invalid shared secret", challenge=self.challenge)
        return found


# --8<-- [end:authenticator]


# --8<-- [start:build]
def build(config: SharedSecretConfig, context: BuildContext) -> SharedSecretAuthenticator:
    """Resolve consumers and encode the secrets once, when the configuration is loaded."""
    consumers = context.services.consumers
    secrets: list[tuple[bytes, Consumer]] = []
    seen: set[bytes] = set()
    for entry in config.secrets:
        secret = entry.secret.get_secret_value().encode()
        if secret in seen:
            raise ValueError(f"two entries use the same secret (consumer {entry.consumer!r})")
        seen.add(secret)
        consumer = consumers.get(entry.consumer) or Consumer(entry.consumer, configured=False)
        secrets.append((secret, consumer))
    return SharedSecretAuthenticator(config.header, secrets, config.forward)


@hookimpl
def register_authenticators(register: Callable[[AuthPlugin[Any]], None]) -> None:
    """Register the `shared-secret` authenticator."""
    register(
        AuthPlugin(
            name="shared-secret",
            build=build,
            config_model=SharedSecretConfig,
            description="A shared secret in a request header identifies the consumer.",
        )
    )


# --8<-- [end:build]
