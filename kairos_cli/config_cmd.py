"""`kairos config`: the configuration of a running gateway (show, reload, validate a file).

`config` is a click group: other modules add subcommands with `config.add_command(...)`.
"""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from kairos_cli.admin_options import Admin, admin_command
from kairos_core.client import ReloadFailed


@click.group()
def config() -> None:
    """The configuration of a running gateway (show, reload, validate a file against it), and
    migrating a seed config.json."""


@config.command("show")
@admin_command
def show(admin: Admin) -> None:
    """Print the running configuration (YAML; every secret redacted)."""
    data = admin.client.config()
    if admin.as_json:
        admin.emit_json(data)
        return
    click.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), nl=False)


@config.command("reload")
@admin_command
def reload(admin: Admin) -> None:
    """Reload the gateway's config file in every worker; a refused file keeps the old one."""
    try:
        result = admin.client.reload()
    except ReloadFailed as exc:
        if admin.as_json:
            admin.emit_json(exc.body)
        raise click.ClickException(
            f"reload refused, the current configuration keeps serving: {exc.message}"
        ) from None
    if admin.as_json:
        admin.emit_json(result)
        return
    workers = f" in {result.workers} workers" if result.workers else ""
    click.echo(f"configuration reloaded{workers}")


@config.command("validate")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@admin_command
def validate(admin: Admin, path: Path) -> None:
    """Check the config file at PATH with a running gateway's plugins; exit 1 if invalid.

    Unlike `kairos validate`, the file is checked by the gateway (its installed plugins and
    version), not by this machine; nothing is applied.
    """
    result = admin.client.validate(path.read_text(encoding="utf-8"))
    if admin.as_json:
        admin.emit_json(result)
    else:
        for warning in result.warnings:
            click.echo(f"warning: {warning}", err=True)
        for problem in result.problems:
            where = f"{path}:{problem.line}" if problem.line else str(path)
            click.echo(f"{where}: {problem.loc}: {problem.message}", err=True)
        if result.valid:
            click.echo(f"{path}: OK (checked by {admin.client.url})")
    if not result.valid:
        raise SystemExit(1)
