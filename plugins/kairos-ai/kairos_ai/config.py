"""Settings of the `ai` balancer and of the `ai-decision-header` stage."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Seconds = Annotated[float, Field(gt=0)]

ALWAYS_DENIED_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key"}
)
"""Header names never sent to the model, whatever the configuration says."""

DEFAULT_DENY_PATTERNS = ["api[-_]?key", "token", "secret", "passw", "session", "signature", "auth"]
CACHE_FEATURES = ("method", "path", "query", "consumer", "body")


class Strict(BaseModel):
    """Base: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _compile_all(patterns: list[str]) -> list[str]:
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
    return patterns


class EndpointConfig(Strict):
    """The OpenAI-compatible chat completions endpoint that makes the decision."""

    base_url: str = Field(
        "https://api.openai.com/v1",
        description="API root, e.g. `http://127.0.0.1:11434/v1` (Ollama) or an Azure "
        "`https://NAME.openai.azure.com/openai/v1`.",
    )
    model: str = Field(description="Model (or Azure deployment) name.")
    api_key_env: str | None = Field(
        None,
        description="NAME of the environment variable holding the API key (the key itself "
        "never goes in the config); unset for keyless servers such as Ollama.",
    )
    api_key_header: str | None = Field(
        None,
        description="Send the key in this header (e.g. `api-key` for Azure) instead of "
        "`Authorization: Bearer`.",
    )
    organization: str | None = Field(None, description="OpenAI organization id.")
    project: str | None = Field(None, description="OpenAI project id.")
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Extra request headers (not secrets: see headers_from_env).",
    )
    headers_from_env: dict[str, str] = Field(
        default_factory=dict,
        description="Extra headers whose values are read from environment variables: "
        "`{Header-Name: ENV_NAME}`.",
    )
    query: dict[str, str] = Field(
        default_factory=dict, description="Query parameters on every call (Azure `api-version`)."
    )
    mode: Literal["json_schema", "tool_call", "auto"] = Field(
        "auto",
        description="How the model answers: a JSON-schema response format, a forced tool call, "
        "or `auto` (JSON schema, switching to a tool call if the endpoint rejects it).",
    )
    temperature: float | None = Field(0.0, ge=0, le=2, description="Sampling temperature.")
    max_tokens: int = Field(64, ge=1, description="Most tokens the answer may use.")

    @field_validator("headers")
    @classmethod
    def _no_secrets(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if name.lower() in ALWAYS_DENIED_HEADERS or re.search("key|token|secret", name, re.I):
                raise ValueError(
                    f"header {name!r} looks like a credential: put its value in an environment "
                    "variable and name it in `headers_from_env`"
                )
        return value


class BackendDescription(Strict):
    """What the model is told about one backend."""

    description: str = Field("", description="What this backend is and what it is good at.")
    tags: list[str] = Field(default_factory=list, description="Short labels (`gpu`, `eu`, ...).")


class RequestFeatures(Strict):
    """Which parts of a request go into the prompt."""

    method: bool = Field(True, description="Send the method.")
    path: bool = Field(True, description="Send the path (as the client sent it).")
    query: bool = Field(True, description="Send the query parameters (denied names masked).")
    consumer: bool = Field(False, description="Send the authenticated consumer's name.")
    headers: list[str] = Field(
        default_factory=list, description="Header names to send (an allowlist; none by default)."
    )
    body_bytes: int = Field(
        0,
        ge=0,
        le=1 << 20,
        description="Send at most this many leading body bytes (0: none); only these are read "
        "ahead, the rest streams to the backend untouched.",
    )
    body_content_types: list[str] = Field(
        default_factory=lambda: [
            "application/json",
            "text/",
            "application/x-www-form-urlencoded",
            "application/xml",
            "application/graphql",
        ],
        description="Content-type prefixes whose body excerpt is sent; other bodies are "
        "described by type and length only.",
    )

    @field_validator("headers")
    @classmethod
    def _not_denied(cls, value: list[str]) -> list[str]:
        for name in value:
            if name.lower() in ALWAYS_DENIED_HEADERS:
                raise ValueError(f"header {name!r} is never sent to the model")
        return [name.lower() for name in value]


class PrivacyConfig(Strict):
    """What never reaches the model."""

    deny_headers: list[str] = Field(
        default_factory=lambda: list(DEFAULT_DENY_PATTERNS),
        description="Regexes (case-insensitive) on header names never sent, even if listed; "
        "Authorization, Cookie and API-key headers are always withheld.",
    )
    deny_query_params: list[str] = Field(
        default_factory=lambda: list(DEFAULT_DENY_PATTERNS),
        description="Regexes (case-insensitive) on query parameter names whose values are masked.",
    )
    redact_emails: bool = Field(True, description="Mask e-mail addresses.")
    redact_card_numbers: bool = Field(
        True, description="Mask payment card numbers (13-19 digits passing the Luhn check)."
    )
    patterns: list[str] = Field(
        default_factory=list,
        description="More regexes masked in the path, query, header values and body.",
    )
    replacement: str = Field("[redacted]", description="What masked text is replaced with.")

    @field_validator("deny_headers", "deny_query_params", "patterns")
    @classmethod
    def _valid_patterns(cls, value: list[str]) -> list[str]:
        return _compile_all(value)


class BreakerConfig(Strict):
    """The circuit breaker around the model endpoint."""

    failures: int = Field(5, ge=1, description="Consecutive failed calls that open the circuit.")
    open_for: Seconds = Field(
        30.0, description="Seconds the circuit stays open before one trial call is let through."
    )


class CacheConfig(Strict):
    """The decision cache: similar requests reuse a recent answer instead of asking again."""

    ttl: float = Field(
        60.0, ge=0, description="Seconds a decision is reused (0 disables the cache)."
    )
    max_entries: int = Field(10_000, ge=1, description="Most decisions kept (least recent go).")
    key: list[str] = Field(
        default_factory=lambda: ["method", "path"],
        description="Request features that make two requests `similar`: `method`, `path`, "
        "`query`, `consumer`, `body` (the excerpt) and `header:NAME`.",
    )

    @field_validator("key")
    @classmethod
    def _known_features(cls, value: list[str]) -> list[str]:
        for feature in value:
            if feature not in CACHE_FEATURES and not (
                feature.startswith("header:") and len(feature) > 7
            ):
                raise ValueError(
                    f"unknown cache key feature {feature!r}; use {', '.join(CACHE_FEATURES)} "
                    "or header:NAME"
                )
        return value


class AiBalancerConfig(Strict):
    """Settings of the `ai` balancer of one upstream pool."""

    endpoint: EndpointConfig = Field(description="The model endpoint.")
    instruction: str = Field(
        "Choose the backend best suited to serve this HTTP request.",
        description="What the model is asked to do (it is also told the backends and the request).",
    )
    backends: dict[str, BackendDescription] = Field(
        default_factory=dict,
        description="Descriptions keyed by backend name or URL; undescribed backends are "
        "offered by name only.",
    )
    request: RequestFeatures = Field(
        default_factory=RequestFeatures, description="Request features put in the prompt."
    )
    privacy: PrivacyConfig = Field(
        default_factory=PrivacyConfig, description="Headers withheld and text redacted."
    )
    timeout: Seconds = Field(
        0.3, description="Seconds the model gets per decision; later, the fallback decides."
    )
    max_concurrent: int = Field(
        16, ge=1, description="Model calls in flight at once; beyond, the fallback decides."
    )
    breaker: BreakerConfig = Field(
        default_factory=BreakerConfig, description="Circuit breaker around the endpoint."
    )
    cache: CacheConfig = Field(default_factory=CacheConfig, description="Decision cache.")
    fallback: Literal["round_robin", "random", "first", "least_connections"] = Field(
        "round_robin", description="Strategy used whenever the model does not decide."
    )

    @model_validator(mode="after")
    def _body_key_needs_body(self) -> AiBalancerConfig:
        if "body" in self.cache.key and not self.request.body_bytes:
            raise ValueError("cache.key uses `body` but request.body_bytes is 0")
        return self


class DecisionHeaderConfig(Strict):
    """Settings of the `ai-decision-header` stage."""

    header: str = Field(
        "X-Kairos-Balancer", description="Response header naming how the backend was chosen."
    )
    reason: bool = Field(True, description="Include the fallback reason.")
