"""Settings of the `jwt` authenticator: keys, JWKS sources, claim checks, rules, token sources."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

Algorithm = Literal[
    "HS256",
    "HS384",
    "HS512",
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
]
ALL_ALGORITHMS: tuple[Algorithm, ...] = (
    "HS256",
    "HS384",
    "HS512",
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
_HEADER_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_HOP_BY_HOP = {"connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade", "host"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KeyConfig(_Model):
    """One verification key, pinned to its algorithms; exactly one source of key material."""

    kid: str | None = Field(
        None, description="Key id tokens name in their `kid` header; none = matches any kid."
    )
    algorithms: list[Algorithm] | None = Field(
        None,
        description="Algorithms this key may verify; defaults to HS256 for secrets, RS256 for "
        "RSA keys, the curve's ES* for EC keys and EdDSA for Ed25519/Ed448 keys.",
    )
    secret: SecretStr | None = Field(None, description="Inline HMAC secret (use `${ENV}`).")
    secret_env: str | None = Field(None, description="Environment variable holding the secret.")
    secret_file: str | None = Field(None, description="File holding the secret.")
    secret_encoding: Literal["utf-8", "base64", "base64url"] = Field(
        "utf-8", description="How the secret text encodes the key bytes."
    )
    pem: str | None = Field(None, description="Inline PEM public key or certificate.")
    pem_file: str | None = Field(None, description="PEM file: public key or certificate.")
    pem_env: str | None = Field(None, description="Environment variable holding a PEM.")
    jwk: dict[str, Any] | None = Field(None, description="Inline JWK (public part is used).")

    @model_validator(mode="after")
    def _one_source(self) -> KeyConfig:
        given = [
            name
            for name in ("secret", "secret_env", "secret_file", "pem", "pem_file", "pem_env", "jwk")
            if getattr(self, name) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of secret, secret_env, secret_file, pem, pem_file, pem_env, jwk"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.algorithms is not None and not self.algorithms:
            raise ValueError("algorithms is empty: omit it to use the key type's default")
        return self


class JwksConfig(_Model):
    """A JWKS URL: fetched at start, refreshed in the background, refetched for unknown kids."""

    url: str = Field(description="http(s) URL of the JSON Web Key Set.")
    algorithms: list[Algorithm] | None = Field(
        None, description="Algorithms keys from this set may use (default: the allow-list)."
    )
    refresh_interval: float = Field(300.0, gt=0, description="Seconds between refreshes.")
    min_refetch_interval: float = Field(
        30.0, ge=0, description="An unknown kid triggers a refetch at most this often (seconds)."
    )
    timeout: float = Field(5.0, gt=0, description="Seconds allowed for one fetch.")
    ca_bundle: str | None = Field(None, description="PEM CA bundle for an https URL.")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return value


class TokenSource(_Model):
    """Where the token is read from; `bearer` is `Authorization: Bearer <token>`."""

    source: Literal["bearer", "header", "cookie", "query"]
    name: str | None = Field(
        None, description="Header, cookie or query parameter name (bearer: the header)."
    )

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"source": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _name_needed(self) -> TokenSource:
        if self.source != "bearer" and not self.name:
            raise ValueError(f"a {self.source} token source needs `name`")
        return self


Scalar = str | int | float | bool


class ClaimRule(_Model):
    """An authorization rule on one claim; a token failing it gets 403."""

    claim: str = Field(description="Claim name; dots reach into objects (`realm_access.roles`).")
    equals: Scalar | None = Field(None, description="The claim equals this value.")
    one_of: list[Scalar] | None = Field(None, description="The claim is one of these values.")
    contains: Scalar | None = Field(
        None, description="The claim (a list, or a space-separated string) contains this value."
    )
    contains_any: list[Scalar] | None = Field(None, description="...contains at least one.")
    contains_all: list[Scalar] | None = Field(None, description="...contains every one.")

    @model_validator(mode="after")
    def _one_test(self) -> ClaimRule:
        tests = [
            name
            for name in ("equals", "one_of", "contains", "contains_any", "contains_all")
            if name in self.model_fields_set
        ]
        if len(tests) != 1:
            raise ValueError(
                "give exactly one of equals, one_of, contains, contains_any, contains_all"
            )
        return self


class CacheConfig(_Model):
    """The verified-token cache (keyed by a hash of the token; never used past `exp`)."""

    max_entries: int = Field(10_000, ge=0, description="Entries kept; 0 turns the cache off.")
    ttl: float = Field(300.0, gt=0, description="Longest time one verification is reused.")


def _default_sources() -> list[TokenSource]:
    return [TokenSource(source="bearer")]


class JwtConfig(_Model):
    """Settings of the `jwt` authenticator."""

    keys: list[KeyConfig] = Field(default_factory=list, description="Static verification keys.")
    jwks: list[JwksConfig] = Field(default_factory=list, description="JWKS URLs.")
    algorithms: list[Algorithm] = Field(
        default_factory=lambda: list(ALL_ALGORITHMS),
        description="Allow-list of accepted algorithms (`none` can never be allowed).",
    )
    require_kid: bool = Field(False, description="Reject tokens without a `kid` header.")
    issuer: str | list[str] | None = Field(None, description="Accepted `iss` value(s).")
    audience: str | list[str] | None = Field(
        None, description="Accepted `aud` value(s); the token must name one of them."
    )
    leeway: float = Field(0.0, ge=0, description="Clock skew allowed on exp/nbf/iat (seconds).")
    required_claims: list[str] = Field(
        default_factory=lambda: ["exp"], description="Claims every token must carry."
    )
    max_age: float | None = Field(
        None, gt=0, description="Reject tokens whose `iat` is older than this (seconds)."
    )
    rules: list[ClaimRule] = Field(
        default_factory=list, description="Authorization rules; all must pass, else 403."
    )
    token_sources: list[TokenSource] = Field(
        default_factory=_default_sources, min_length=1, description="Where to look, in order."
    )
    forward_claims: dict[str, str] = Field(
        default_factory=dict, description="Claim name -> upstream header carrying its value."
    )
    strip_credential: bool = Field(False, description="Remove the token before proxying.")
    consumer_claim: str = Field("sub", description="Claim naming the consumer.")
    require_configured_consumer: bool = Field(
        False, description="403 unless the claim names a consumer declared in `consumers`."
    )
    realm: str = Field("kairos", description="realm in the WWW-Authenticate challenge.")
    max_token_length: int = Field(8192, ge=64, description="Longer tokens are rejected unread.")
    cache: CacheConfig = Field(default_factory=CacheConfig)

    @model_validator(mode="after")
    def _consistent(self) -> JwtConfig:
        if not self.keys and not self.jwks:
            raise ValueError("configure at least one key (`keys`) or JWKS URL (`jwks`)")
        if not self.algorithms:
            raise ValueError("algorithms is empty: no token could ever be accepted")
        for header in self.forward_claims.values():
            if not _HEADER_NAME_RE.match(header) or header.lower() in _HOP_BY_HOP:
                raise ValueError(f"forward_claims: {header!r} is not a usable header name")
        if '"' in self.realm or "\\" in self.realm:
            raise ValueError("realm must not contain quotes or backslashes")
        return self
