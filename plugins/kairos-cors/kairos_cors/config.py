"""The `cors` plugin's settings."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kairos_cors.origins import check_origin_pattern

_TOKEN_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

DEFAULT_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


def _check_tokens(values: list[str], what: str) -> list[str]:
    for value in values:
        if value != "*" and not _TOKEN_RE.match(value):
            raise ValueError(f"{value!r} is not a valid {what}")
    return values


class CorsConfig(BaseModel):
    """Settings of the `cors` plugin."""

    model_config = ConfigDict(extra="forbid")
    allow_origins: list[str] = Field(
        default_factory=list,
        description="Allowed origins: exact (`https://app.example.com`), subdomain wildcard "
        "(`https://*.example.com`), any port (`http://localhost:*`), or `*` for every origin.",
    )
    allow_origin_regex: list[str] = Field(
        default_factory=list,
        description="Regular expressions; an origin is allowed when one matches it entirely.",
    )
    allow_methods: list[str] = Field(
        default_factory=lambda: list(DEFAULT_METHODS),
        description="Methods a preflight may ask for; `*` allows any.",
    )
    allow_headers: list[str] = Field(
        default_factory=list,
        description="Request headers a preflight may ask for (CORS-safelisted ones always "
        "pass); `*` allows any.",
    )
    expose_headers: list[str] = Field(
        default_factory=list, description="Response headers the browser lets scripts read."
    )
    allow_credentials: bool = Field(
        False, description="Allow cookies and HTTP authentication on cross-origin requests."
    )
    max_age: int | None = Field(
        600, ge=0, description="Seconds a browser may cache a preflight answer; null to omit."
    )

    @field_validator("allow_origins")
    @classmethod
    def _valid_origins(cls, value: list[str]) -> list[str]:
        return [check_origin_pattern(origin) for origin in value]

    @field_validator("allow_origin_regex")
    @classmethod
    def _valid_regexes(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
        return value

    @field_validator("allow_methods")
    @classmethod
    def _valid_methods(cls, value: list[str]) -> list[str]:
        return _check_tokens([m.upper() if m != "*" else m for m in value], "method")

    @field_validator("allow_headers", "expose_headers")
    @classmethod
    def _valid_headers(cls, value: list[str]) -> list[str]:
        return _check_tokens(value, "header name")

    @model_validator(mode="after")
    def _some_origin(self) -> CorsConfig:
        if not self.allow_origins and not self.allow_origin_regex:
            raise ValueError("set `allow_origins` and/or `allow_origin_regex`")
        return self
