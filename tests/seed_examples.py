"""The seed system's example config.json and variations of it, for the seed-format tests."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import jwt as pyjwt

EXAMPLE_PATH = Path(__file__).parent / "data" / "seed-config-example.json"
EXAMPLE: dict[str, Any] = json.loads(EXAMPLE_PATH.read_text())
SECRET = EXAMPLE["jwt"]["secret"]


def example() -> dict[str, Any]:
    """A fresh deep copy of the example, to change freely."""
    return copy.deepcopy(EXAMPLE)


def router(config: dict[str, Any], external_path: str) -> dict[str, Any]:
    """The router of `config` with this external_path."""
    return next(r for r in config["routers"] if r["external_path"] == external_path)


def with_ports(config: dict[str, Any], ports: dict[int, int]) -> dict[str, Any]:
    """`config` with every backend port in `ports` (old -> new) replaced."""
    config = copy.deepcopy(config)
    for entry in config["routers"]:
        for backend in entry.get("backends") or ():
            backend["port"] = ports.get(backend["port"], backend["port"])
        if "port" in entry:
            entry["port"] = ports.get(entry["port"], entry["port"])
    return config


def write(tmp_path: Path, config: dict[str, Any], name: str = "config.json") -> Path:
    """Write `config` as indented JSON (like the seed system's files) and return the path."""
    path = tmp_path / name
    path.write_text(json.dumps(config, indent=2))
    return path


def token(claims: dict[str, Any] | None = None, secret: str = SECRET) -> str:
    """An HS256 token the example's jwt section accepts (unless `claims` says otherwise)."""
    payload = {
        "sub": "alice",
        "iss": "kairos-gateway",
        "aud": "api-clients",
        "exp": int(time.time()) + 300,
        **(claims or {}),
    }
    return pyjwt.encode(payload, secret, algorithm="HS256")
