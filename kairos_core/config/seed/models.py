"""The seed system's `config.json` as pydantic models: every field it defines, nothing more."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kairos_core.config.models import HTTP_METHODS

Protocol = Literal["http", "websocket", "ftp", "dns"]
Strategy = Literal["round_robin", "least_connections", "random", "weighted", "ip_hash"]
Status = int


class SeedModel(BaseModel):
    """Base of the seed models: unknown fields are errors and types are not coerced."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _absolute(value: str | None) -> str | None:
    if value is not None and not value.startswith("/"):
        raise ValueError("must start with '/'")
    return value


class SeedBackend(SeedModel):
    """One backend server: `host` is scheme plus host name (`http://10.0.0.5`)."""

    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)
    weight: int = Field(1, ge=0)
    health_check_path: str | None = None

    _path = field_validator("health_check_path")(_absolute)


class SeedRetry(SeedModel):
    """Retries with exponential backoff."""

    max_retries: int = Field(3, ge=0, le=100)
    initial_backoff_ms: int = Field(100, ge=1)
    max_backoff_ms: int = Field(5000, ge=1)
    backoff_multiplier: float = Field(2.0, ge=1)
    retry_on_status_codes: list[Status] = Field(default_factory=lambda: [502, 503, 504])
    retry_on_connection_error: bool = True

    @field_validator("retry_on_status_codes")
    @classmethod
    def _statuses(cls, value: list[int]) -> list[int]:
        for code in value:
            if not 100 <= code <= 599:
                raise ValueError(f"{code} is not an HTTP status")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> SeedRetry:
        if self.max_backoff_ms < self.initial_backoff_ms:
            raise ValueError("max_backoff_ms is smaller than initial_backoff_ms")
        return self


class SeedHeaderAction(SeedModel):
    """A header edit: `add` (if absent), `set`, `remove`, or `replace` (regex on the value)."""

    action: Literal["add", "set", "remove", "replace"]
    name: str = Field(min_length=1)
    value: str | None = None
    pattern: str | None = None
    replacement: str | None = None

    @model_validator(mode="after")
    def _fields_of_action(self) -> SeedHeaderAction:
        needed = {"add": ("value",), "set": ("value",), "replace": ("pattern", "replacement")}
        missing = [f for f in needed.get(self.action, ()) if getattr(self, f) is None]
        if missing:
            raise ValueError(f"action {self.action} needs {' and '.join(missing)}")
        return self


class SeedQueryAction(SeedModel):
    """A query parameter edit."""

    action: Literal["add", "set", "remove"]
    name: str = Field(min_length=1)
    value: str | None = None

    @model_validator(mode="after")
    def _value_needed(self) -> SeedQueryAction:
        if self.action != "remove" and self.value is None:
            raise ValueError(f"action {self.action} needs value")
        return self


class SeedPathRewrite(SeedModel):
    """A regex rewrite of the upstream path."""

    pattern: str
    replacement: str


class SeedStatusMapping(SeedModel):
    """Replace a backend status by another."""

    from_: int = Field(alias="from", ge=100, le=599)
    to: int = Field(ge=200, le=599)


class SeedRequestTransformation(SeedModel):
    """Edits of the request on its way to the backend."""

    headers: list[SeedHeaderAction] = Field(default_factory=list)
    path: SeedPathRewrite | None = None
    query_params: list[SeedQueryAction] = Field(default_factory=list)


class SeedResponseTransformation(SeedModel):
    """Edits of the response on its way back."""

    headers: list[SeedHeaderAction] = Field(default_factory=list)
    status_code_mappings: list[SeedStatusMapping] = Field(default_factory=list)


class SeedContentAnalysis(SeedModel):
    """The model reads the request's content to choose."""

    model: str | None = None


class SeedAiStrategy(SeedModel):
    """How the model chooses."""

    content_analysis: SeedContentAnalysis | None = None


class SeedAiPolicy(SeedModel):
    """Per-route AI backend selection."""

    enabled: bool = True
    strategy: SeedAiStrategy = Field(default_factory=SeedAiStrategy)
    provider: str | None = None
    fallback_backend_index: int | None = Field(None, ge=0)


class SeedRouter(SeedModel):
    """One route of the seed system."""

    protocol: Protocol = "http"
    external_path: str
    internal_path: str | None = None
    methods: list[str] | None = None
    auth_required: bool = False
    load_balancing_strategy: Strategy = "round_robin"
    backends: list[SeedBackend] | None = None
    host: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
    retry: SeedRetry | None = None
    request_transformation: SeedRequestTransformation | None = None
    response_transformation: SeedResponseTransformation | None = None
    ai_policy: SeedAiPolicy | None = None

    _paths = field_validator("external_path", "internal_path")(_absolute)

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, value: list[str] | None) -> list[str] | None:
        unknown = sorted({m.upper() for m in value or ()} - HTTP_METHODS)
        if unknown:
            raise ValueError(f"unknown HTTP method(s): {', '.join(unknown)}")
        return value

    @model_validator(mode="after")
    def _one_upstream_form(self) -> SeedRouter:
        legacy = self.host is not None or self.port is not None
        if self.backends is not None and legacy:
            raise ValueError("give either `backends` or the legacy `host` and `port`, not both")
        if self.backends is None and not legacy:
            raise ValueError("give `backends`, or the legacy `host` and `port`")
        if legacy and (self.host is None or self.port is None):
            raise ValueError("the legacy form needs both `host` and `port`")
        if self.backends is not None and not self.backends:
            raise ValueError("`backends` is empty")
        return self


class SeedJwt(SeedModel):
    """The global HS256 JWT check that `auth_required` routes use."""

    secret: str
    issuer: str | None = None
    audience: str | None = None
    required_claims: list[str] = Field(default_factory=list)


class SeedRateLimit(SeedModel):
    """The global rate limit."""

    strategy: Literal["PerIP", "PerUser", "PerRoute", "PerIPAndRoute", "PerUserAndRoute"]
    requests_per_window: int = Field(ge=1)
    window_duration: int = Field(ge=1)
    burst_allowance: int = Field(0, ge=0)
    window_type: Literal["FixedWindow", "SlidingWindow", "TokenBucket"]
    enable_redis: bool = False
    redis_key_prefix: str | None = None


class SeedAi(SeedModel):
    """The global AI provider and model."""

    provider: str
    model: str


class SeedConfig(SeedModel):
    """A whole seed `config.json`."""

    version: Literal[1] = 1
    jwt: SeedJwt | None = None
    rate_limit: SeedRateLimit | None = None
    ai: SeedAi | None = None
    routers: list[SeedRouter] = Field(default_factory=list)
