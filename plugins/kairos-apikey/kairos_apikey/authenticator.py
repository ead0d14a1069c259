"""The `apikey` authenticator: a key in a header or query parameter, looked up by its SHA-256."""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kairos_apikey.keys import MAX_KEY_LENGTH, key_digest, parse_hash
from kairos_core import AuthFailure, BuildContext, Consumer, RequestContext

_INDEX_BYTES = 8
"""Digest bytes used to find candidates; the rest is checked with compare_digest."""
_HEADER_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class StoredKey(BaseModel):
    """One accepted key, stored only as its hash, and the consumer it stands for."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    consumer: str = Field(description="Name of a consumer declared under `consumers`.")
    hash: str = Field(description="`sha256:<64 hex>` as printed by `kairos apikey hash`.")
    label: str | None = Field(None, description="Free text to tell keys apart (never sent).")

    @field_validator("hash")
    @classmethod
    def _valid_hash(cls, value: str) -> str:
        parse_hash(value)
        return value


class ApiKeyConfig(BaseModel):
    """Settings of the `apikey` authenticator."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    header: str | None = Field("X-API-Key", description="Header carrying the key; null for none.")
    query: str | None = Field(None, description="Query parameter carrying the key, if any.")
    keys: list[StoredKey] = Field(min_length=1, description="Accepted keys (hashed).")
    strip_credential: bool = Field(True, description="Remove the key before proxying.")
    realm: str = Field("kairos", description="realm in the WWW-Authenticate challenge.")

    @model_validator(mode="after")
    def _somewhere(self) -> ApiKeyConfig:
        if not self.header and not self.query:
            raise ValueError("set `header`, `query` or both: the key must come from somewhere")
        if self.header and not _HEADER_NAME_RE.match(self.header):
            raise ValueError(f"header: {self.header!r} is not a valid header name")
        if '"' in self.realm or "\\" in self.realm:
            raise ValueError("realm must not contain quotes or backslashes")
        return self


class ApiKeyAuthenticator:
    """Maps a presented key to its consumer; unknown keys get 401."""

    def __init__(self, config: ApiKeyConfig, keys: Mapping[bytes, Consumer]) -> None:
        buckets: dict[bytes, list[tuple[bytes, Consumer]]] = {}
        for digest, consumer in keys.items():
            buckets.setdefault(digest[:_INDEX_BYTES], []).append((digest, consumer))
        self._buckets = {prefix: tuple(entries) for prefix, entries in buckets.items()}
        self._header = config.header
        self._query = config.query
        self._strip = config.strip_credential
        where = f'header="{config.header}"' if config.header else f'query="{config.query}"'
        self.challenge = f'ApiKey realm="{config.realm}", {where}'

    async def authenticate(self, ctx: RequestContext) -> Consumer | None:
        """The key's consumer; None without a key; AuthFailure for a wrong key."""
        return self.authenticate_now(ctx)

    def authenticate_now(self, ctx: RequestContext) -> Consumer | None:
        """`authenticate` without awaiting (nothing here waits), so the core skips the coroutine."""
        key: str | None = None
        if self._header is not None:
            key = ctx.request.headers.get(self._header)
        if not key and self._query is not None:
            key = ctx.request.query.get(self._query)
        if not key:
            return None
        if len(key) > MAX_KEY_LENGTH:
            raise self._invalid()
        digest = key_digest(key)
        # The index holds only a prefix of the SHA-256 digest; the full digest is then
        # compared in constant time, so timing reveals nothing about any stored key.
        found: Consumer | None = None
        for stored, consumer in self._buckets.get(digest[:_INDEX_BYTES], ()):
            if hmac.compare_digest(stored, digest):
                found = consumer
        if found is None:
            raise self._invalid()
        if self._strip:
            self._remove(ctx)
        return found

    def _invalid(self) -> AuthFailure:
        return AuthFailure("invalid API key", 401, self.challenge, "invalid_api_key")

    def _remove(self, ctx: RequestContext) -> None:
        if self._header is not None:
            ctx.headers.popall(self._header, None)
        if self._query is not None and ctx.query_string:
            name = self._query
            ctx.query_string = "&".join(
                part
                for part in ctx.query_string.split("&")
                if unquote_plus(part.partition("=")[0]) != name
            )


def build_authenticator(config: ApiKeyConfig, context: BuildContext) -> ApiKeyAuthenticator:
    """Index the configured hashes by digest; every key must name a declared consumer."""
    consumers = context.services.consumers
    table: dict[bytes, Consumer] = {}
    for index, stored in enumerate(config.keys):
        consumer = consumers.get(stored.consumer)
        if consumer is None:
            known = ", ".join(sorted(consumers)) or "none"
            raise ValueError(
                f"keys[{index}].consumer: no consumer named {stored.consumer!r} "
                f"is declared under `consumers` (declared: {known})"
            )
        digest = parse_hash(stored.hash)
        if digest in table:
            raise ValueError(f"keys[{index}].hash: the same key is listed twice")
        table[digest] = consumer
    return ApiKeyAuthenticator(config, table)
