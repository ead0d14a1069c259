"""Seed settings that become plugin entries or route options: jwt, rate limit, transform, retry."""

from __future__ import annotations

import re
from typing import Any

from kairos_core.config.seed.models import (
    SeedHeaderAction,
    SeedJwt,
    SeedQueryAction,
    SeedRateLimit,
    SeedRequestTransformation,
    SeedResponseTransformation,
    SeedRetry,
)

REDIS_URL = "${KAIROS_REDIS_URL:-redis://127.0.0.1:6379/0}"
"""The seed names no Redis server: the converted config reads it from the environment."""

BALANCERS: dict[str, str | dict[str, Any] | None] = {
    "round_robin": None,  # the core's default
    "least_connections": "least_connections",
    "random": "random",
    "weighted": "weighted_round_robin",
    "ip_hash": {"name": "consistent_hash", "config": {"key": "client_ip"}},
}
RATE_LIMIT_KEYS = {
    "PerIP": ["ip"],
    "PerUser": ["consumer"],
    "PerRoute": ["route"],
    "PerIPAndRoute": ["ip", "route"],
    "PerUserAndRoute": ["consumer", "route"],
}
RATE_LIMIT_ALGORITHMS = {
    "FixedWindow": "fixed_window",
    "SlidingWindow": "sliding_window_counter",
    "TokenBucket": "token_bucket",
}
_ENV_REF = re.compile(r"\$\{[A-Za-z_]")
_REPLACEMENT_TOKEN = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$\(")


def is_env_reference(text: str) -> bool:
    """Whether `text` takes (part of) its value from the environment (`${NAME}`)."""
    return _ENV_REF.search(text) is not None


def literal(text: str) -> str:
    """`text` written so that the loader's `${ENV}` interpolation gives `text` back."""
    return text.replace("$", "$$") if "$$" in text or is_env_reference(text) else text


def template_value(text: str) -> str:
    """A seed header or query value for the transform plugin: a literal `$(` is no template."""
    return text.replace("$(", "$$$$(")


def regex_replacement(text: str) -> str:
    """A seed (Rust regex) replacement in the transform plugin's syntax, safe from `${ENV}`.

    `$1`, `${1}` and `$name` pass as they are; `${name}` becomes `$name` (or `$${name}` when
    a name character follows); `$$` (a literal `$`) and a literal `$(` are escaped twice: once
    for the loader, once for the plugin.
    """

    def token(match: re.Match[str]) -> str:
        text = match.group(0)
        if text == "$$":
            return "$$$$"
        if text == "$(":
            return "$$$$("
        name = match.group(1)
        following = match.string[match.end() : match.end() + 1]
        return f"$${{{name}}}" if re.match(r"[A-Za-z0-9_]", following) else f"${name}"

    return _REPLACEMENT_TOKEN.sub(token, text)


def jwt_config(jwt: SeedJwt) -> dict[str, Any]:
    """The `jwt` plugin settings of the seed's global HS256 check."""
    config: dict[str, Any] = {"keys": [{"secret": jwt.secret}], "algorithms": ["HS256"]}
    if jwt.issuer is not None:
        config["issuer"] = jwt.issuer
    if jwt.audience is not None:
        config["audience"] = jwt.audience
    claims = ["exp", *(c for c in jwt.required_claims if c != "exp")]
    config["required_claims"] = claims
    return config


def rate_limit_config(limit: SeedRateLimit) -> dict[str, Any]:
    """The `rate-limit` plugin settings of the seed's global limit."""
    config: dict[str, Any] = {
        "key": list(RATE_LIMIT_KEYS[limit.strategy]),
        "limits": [
            {
                "algorithm": RATE_LIMIT_ALGORITHMS[limit.window_type],
                "limit": limit.requests_per_window + limit.burst_allowance,
                "window": limit.window_duration,
            }
        ],
    }
    if "consumer" in config["key"]:
        config["on_missing_key"] = "skip"
    if limit.enable_redis:
        redis: dict[str, Any] = {"url": REDIS_URL}
        if limit.redis_key_prefix:
            prefix = limit.redis_key_prefix
            redis["key_prefix"] = prefix if prefix.endswith(":") else f"{prefix}:"
        config["backend"] = "redis"
        config["redis"] = redis
    return config


def retry_config(retry: SeedRetry) -> dict[str, Any]:
    """A route's `retry` section from the seed's retry policy."""
    on_error = retry.retry_on_connection_error
    return {
        "max_retries": retry.max_retries,
        "backoff": {
            "initial": retry.initial_backoff_ms / 1000,
            "max": retry.max_backoff_ms / 1000,
            "multiplier": retry.backoff_multiplier,
        },
        "on_statuses": list(retry.retry_on_status_codes),
        "on_connect_error": on_error,
        "on_reset": on_error,
        "on_timeout": on_error,
    }


def header_action(action: SeedHeaderAction) -> dict[str, Any]:
    """One header edit in the transform plugin's form."""
    out: dict[str, Any] = {"action": action.action, "name": action.name}
    if action.action in ("add", "set"):
        out["value"] = template_value(action.value or "")
    elif action.action == "replace":
        out["pattern"] = literal(action.pattern or "")
        out["replacement"] = regex_replacement(action.replacement or "")
        out["all"] = False
    return out


def unused_header_fields(action: SeedHeaderAction) -> list[str]:
    """Fields given on a header action that its action does not use."""
    used = {
        "add": {"value"},
        "set": {"value"},
        "remove": set(),
        "replace": {"pattern", "replacement"},
    }
    return [
        name
        for name in ("value", "pattern", "replacement")
        if getattr(action, name) is not None and name not in used[action.action]
    ]


def query_action(action: SeedQueryAction) -> dict[str, Any]:
    """One query parameter edit in the transform plugin's form."""
    out: dict[str, Any] = {"action": action.action, "name": action.name}
    if action.action != "remove":
        out["value"] = template_value(action.value or "")
    return out


def transform_config(
    request: SeedRequestTransformation | None, response: SeedResponseTransformation | None
) -> dict[str, Any]:
    """The `transform` plugin settings of a route; empty when the seed edits nothing."""
    config: dict[str, Any] = {}
    if request is not None:
        side: dict[str, Any] = {}
        if request.headers:
            side["headers"] = [header_action(h) for h in request.headers]
        if request.path is not None:
            side["path"] = {
                "pattern": literal(request.path.pattern),
                "replacement": regex_replacement(request.path.replacement),
            }
        if request.query_params:
            side["query"] = [query_action(q) for q in request.query_params]
        if side:
            config["request"] = side
    if response is not None:
        side = {}
        if response.status_code_mappings:
            side["status"] = [{"from": m.from_, "to": m.to} for m in response.status_code_mappings]
        if response.headers:
            side["headers"] = [header_action(h) for h in response.headers]
        if side:
            config["response"] = side
    return config
