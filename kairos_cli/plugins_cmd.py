"""`kairos plugins list`: what is installed, from which distribution, and what the config enables."""

from __future__ import annotations

import json
from typing import Any

import click

from kairos_cli.scaffold import new_plugin
from kairos_core.config.errors import ConfigError
from kairos_core.config.loader import load_config, load_config_text
from kairos_core.plugins import PluginError, PluginHost, installed_plugins
from kairos_core.process import DEFAULT_CONFIG_NAME, default_config_text
from kairos_core.runtime import required_plugin_names


@click.group()
def plugins() -> None:
    """Installed plugins, and a scaffold for new ones."""


plugins.add_command(new_plugin)


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--hooks", is_flag=True, help="Import the plugins to show the hooks each implements.")
@click.option(
    "--config",
    "-c",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="KAIROS_CONFIG",
    help="Config whose enabled plugins are marked (default: the embedded one).",
)
def list_plugins(as_json: bool, hooks: bool, config_path: str | None) -> None:
    """List plugin entry points (read without importing unless --hooks)."""
    try:
        loaded = (
            load_config(config_path)
            if config_path
            else load_config_text(default_config_text(), DEFAULT_CONFIG_NAME)
        )
    except ConfigError as exc:
        raise click.ClickException(exc.render()) from None
    enabled = set(required_plugin_names(loaded.config))
    rows: list[dict[str, Any]] = [
        {
            "name": p.name,
            "distribution": p.distribution,
            "version": p.version,
            "target": p.target,
            "enabled": p.name in enabled,
        }
        for p in installed_plugins()
    ]
    if hooks:
        host = PluginHost(builtins=[])
        try:
            host.load(row["name"] for row in rows)
        except PluginError as exc:
            raise click.ClickException(str(exc)) from None
        by_plugin = host.hook_names_by_plugin()
        for row in rows:
            row["hooks"] = by_plugin.get(f"kairos:{row['name']}", [])
        # entry points sharing a module are registered once, under the first name
        modules = {row["target"]: row.get("hooks") for row in rows if row.get("hooks")}
        for row in rows:
            if not row.get("hooks"):
                row["hooks"] = modules.get(row["target"], [])
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no plugins installed (pip install a kairos-* plugin distribution)")
        return
    width = max(len(str(r["name"])) for r in rows)
    for row in rows:
        mark = "enabled" if row["enabled"] else "-"
        line = f"{row['name']:<{width}}  {row['distribution']} {row['version']}  {mark}"
        if hooks:
            line += "  hooks: " + ", ".join(row["hooks"])
        click.echo(line)
