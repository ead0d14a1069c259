"""The seed's `ai` + `ai_policy` as the `ai` balancer of the kairos-ai plugin."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kairos_core.config.seed.models import SeedAi, SeedAiPolicy


@dataclass(frozen=True, slots=True)
class Provider:
    """Where a seed `provider` name is reached with an OpenAI-compatible client."""

    base_url: str
    api_key_env: str | None


PROVIDERS = {
    # OPENAI_BASE_URL is the variable the official openai client itself reads.
    "openai": Provider("${OPENAI_BASE_URL:-https://api.openai.com/v1}", "OPENAI_API_KEY"),
    "anthropic": Provider("https://api.anthropic.com/v1", "ANTHROPIC_API_KEY"),
    "ollama": Provider("http://127.0.0.1:11434/v1", None),
}
AI_FALLBACKS = {"round_robin", "random", "least_connections"}
CONTENT_BYTES = 2048
"""Leading body bytes the model reads when the seed asks for `content_analysis`."""


class AiPolicyError(ValueError):
    """An `ai_policy` that cannot be converted; `field` names the seed field at fault."""

    def __init__(self, field: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def ai_balancer(
    policy: SeedAiPolicy, ai: SeedAi | None, strategy: str, backend_count: int
) -> tuple[dict[str, Any], str | None]:
    """The balancer entry and, when the fallback is not the seed's choice, a note why."""
    provider_name = policy.provider or (ai.provider if ai else None)
    if provider_name is None:
        raise AiPolicyError(
            ("provider",), "no provider: set `provider` here or in the top-level `ai` section"
        )
    provider = PROVIDERS.get(provider_name.lower())
    if provider is None:
        raise AiPolicyError(
            ("provider",) if policy.provider else (),
            f"unknown provider {provider_name!r}; Kairos converts {', '.join(sorted(PROVIDERS))} "
            "(for another OpenAI-compatible server, run `kairos config migrate` with a known "
            "provider and set `balancer.config.endpoint.base_url`)",
        )
    analysis = policy.strategy.content_analysis
    model = (analysis.model if analysis else None) or (ai.model if ai else None)
    if model is None:
        raise AiPolicyError(
            ("strategy",), "no model: set `strategy.content_analysis.model` or `ai.model`"
        )
    endpoint: dict[str, Any] = {"base_url": provider.base_url, "model": model}
    if provider.api_key_env:
        endpoint["api_key_env"] = provider.api_key_env
    config: dict[str, Any] = {"endpoint": endpoint}
    if analysis is not None:
        config["request"] = {"body_bytes": CONTENT_BYTES}
        config["cache"] = {"key": ["method", "path", "body"]}
    note = None
    if policy.fallback_backend_index is not None:
        if policy.fallback_backend_index >= backend_count:
            raise AiPolicyError(
                ("fallback_backend_index",),
                f"there is no backend {policy.fallback_backend_index} "
                f"(the route has {backend_count})",
            )
        config["fallback"] = "first"
    elif strategy in AI_FALLBACKS:
        config["fallback"] = strategy
    else:
        config["fallback"] = "round_robin"
        note = (
            f"the ai balancer cannot fall back to {strategy!r}: it falls back to round_robin "
            "(set fallback_backend_index to pick one backend)"
        )
    return {"name": "ai", "config": config}, note
