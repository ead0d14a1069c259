"""kairos-apikey: API keys in a header or query parameter, stored as SHA-256 hashes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from kairos_apikey.authenticator import ApiKeyAuthenticator, ApiKeyConfig, build_authenticator
from kairos_apikey.cli import apikey
from kairos_apikey.keys import generate_key, hash_key
from kairos_core import AuthPlugin, hookimpl

PRIORITY = 10
"""Default order among a route's authenticators (higher is tried first)."""


@hookimpl
def register_authenticators(register: Callable[[AuthPlugin[Any]], None]) -> None:
    """Register the `apikey` authenticator."""
    register(
        AuthPlugin(
            name="apikey",
            build=build_authenticator,
            config_model=ApiKeyConfig,
            priority=PRIORITY,
            description="API keys (SHA-256 hashed in config) mapped to consumers",
        )
    )


@hookimpl
def register_cli_commands(cli: click.Group) -> None:
    """Add `kairos apikey hash|generate`."""
    cli.add_command(apikey)


__all__ = [
    "ApiKeyAuthenticator",
    "ApiKeyConfig",
    "apikey",
    "build_authenticator",
    "generate_key",
    "hash_key",
]
