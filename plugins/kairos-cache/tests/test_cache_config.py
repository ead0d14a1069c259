"""Bad cache settings are refused with the file, the field and the reason; good ones validate."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from kairos_cache import CachePlugin


def config_with(cache: dict[str, Any]) -> dict[str, Any]:
    return {
        "routes": [
            {
                "prefix": "/",
                "upstream": {"backends": [{"url": "http://127.0.0.1:9"}]},
                "plugins": [{"name": "cache", "config": cache}],
            }
        ]
    }


def validate(tmp_path: Path, cache: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config_with(cache)))
    return subprocess.run(
        [sys.executable, "-m", "kairos_cli", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("cache", "field", "reason"),
    [
        ({"backend": "memcached"}, "config.backend", "memory"),
        ({"backend": "redis", "redis": {"url": "http://x"}}, "config.redis.url", "redis://"),
        ({"ttl": 5}, "config.ttl", "unknown field"),
        ({"max_object_size": "2GB"}, "config", "exceeds memory.max_bytes"),
        ({"statuses": [200, 206]}, "config.statuses", "206"),
        ({"default_ttl": -1}, "config.default_ttl", "greater than or equal"),
        ({"key": {"query": "some"}}, "config.key.query", "all"),
    ],
)
async def test_bad_settings_name_the_field(
    kairos_gateway: Any, cache: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(Exception, match="routes") as raised:
        await kairos_gateway(config_with(cache), plugins=[CachePlugin()])
    message = str(raised.value)
    assert f"routes[0].plugins[0].{field}" in message
    assert reason in message


def test_validate_names_the_file(tmp_path: Path) -> None:
    result = validate(tmp_path, {"backend": "redis", "redis": {"url": "http://x"}})
    assert result.returncode != 0
    assert "gateway.yaml:6: routes[0].plugins[0].config.redis.url" in result.stderr


def test_good_settings_validate(tmp_path: Path) -> None:
    result = validate(
        tmp_path,
        {
            "backend": "redis",
            "redis": {"url": "redis://127.0.0.1:6379/0", "compress": True},
            "default_ttl": 30,
            "key": {"query": ["page"], "headers": ["Accept-Language"]},
            "max_object_size": "512KB",
        },
    )
    assert result.returncode == 0, result.stderr
    assert "plugins: cache" in result.stdout
