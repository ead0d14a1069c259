"""Helpers shared by commands: loading a config and its plugins with readable errors."""

from __future__ import annotations

import click

from kairos_core.config.errors import ConfigError
from kairos_core.config.loader import LoadedConfig, load_config
from kairos_core.gateway import Gateway
from kairos_core.plugins import PluginError
from kairos_core.runtime import Runtime


def load_or_exit(path: str) -> LoadedConfig:
    """Load a config file, or print its problems and exit 1."""
    try:
        return load_config(path)
    except ConfigError as exc:
        raise click.ClickException(exc.render()) from None


def build_or_exit(loaded: LoadedConfig) -> tuple[Gateway, Runtime]:
    """Load the plugins a config needs and build its runtime without serving; exit 1 on error."""
    gateway = Gateway(loaded)
    try:
        return gateway, gateway.prepare(loaded)
    except (ConfigError, PluginError) as exc:
        message = exc.render() if isinstance(exc, ConfigError) else str(exc)
        raise click.ClickException(message) from None
