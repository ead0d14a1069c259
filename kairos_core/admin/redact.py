"""Show a configuration without its secrets: masked fields, secret-looking keys, env values."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ValidationError

from kairos_core.config.loader import LoadedConfig
from kairos_core.plugins import Registry

MASK = "**redacted**"
_SECRET_KEY = re.compile(
    r"(secret|password|passwd|passphrase|token|api[_-]?key|private|credential|authorization|cookie|"
    r"client[_-]?key|signing[_-]?key|^key$)",
    re.IGNORECASE,
)
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/@:\s]*:)[^@/\s]+@", re.IGNORECASE)


def redact_url(url: str) -> str:
    """`url` (or any text holding URLs) with the password of each `user:password@` masked."""
    return _URL_PASSWORD.sub(rf"\g<head>{MASK}@", url) if "@" in url else url


def redacted_config(loaded: LoadedConfig, registry: Registry | None) -> dict[str, Any]:
    """The configuration as JSON data, every secret replaced by a mask."""
    data: dict[str, Any] = loaded.config.model_dump(mode="json")
    if registry is not None:
        _plugin_settings(data, registry)
    scrubbed: dict[str, Any] = _scrub(data, loaded.env_values, secret_key=False)
    return scrubbed


def _plugin_settings(data: dict[str, Any], registry: Registry) -> None:
    """Re-dump plugin `config` blocks through their models, so SecretStr fields come out masked."""
    entries: list[dict[str, Any]] = list(data.get("plugins", []))
    for route in data.get("routes", []):
        entries += route.get("plugins", [])
    for consumer in data.get("consumers", []):
        entries += consumer.get("plugins", [])
    for entry in entries:
        component = registry.stages.get(entry["name"]) or registry.authenticators.get(entry["name"])
        model: type[BaseModel] | None = getattr(component, "config_model", None)
        if model is None:
            continue
        try:
            entry["config"] = model.model_validate(entry["config"]).model_dump(mode="json")
        except (ValidationError, ValueError, TypeError):
            continue


def _scrub(value: Any, env_values: frozenset[str], secret_key: bool) -> Any:
    if isinstance(value, dict):
        return {
            k: _scrub(v, env_values, secret_key or bool(_SECRET_KEY.search(str(k))))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_scrub(v, env_values, secret_key) for v in value]
    if isinstance(value, str):
        if secret_key and value:
            return MASK
        if env_values and any(secret in value for secret in env_values):
            return MASK
        return redact_url(value)
    return value
