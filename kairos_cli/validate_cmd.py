"""`kairos validate PATH`: check a config file and the plugin settings in it."""

from __future__ import annotations

import click

from kairos_cli.common import build_or_exit, load_or_exit


@click.command()
@click.argument("path", type=click.Path(dir_okay=False))
def validate(path: str) -> None:
    """Validate the config at PATH (schema, references, plugin settings). Exit 0 if valid."""
    loaded = load_or_exit(path)
    _gateway, runtime = build_or_exit(loaded)
    for warning in loaded.warnings:
        click.echo(f"warning: {warning}", err=True)
    names = sorted({link["name"] for route in runtime.routes for link in route.chain} - {"proxy"})
    click.echo(
        f"{path}: OK ({len(runtime.routes)} routes, {len(runtime.pools)} upstream pools, "
        f"plugins: {', '.join(names) or 'none'})"
    )
