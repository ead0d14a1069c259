"""`kairos config migrate`: write a seed `config.json` as native Kairos YAML."""

from __future__ import annotations

from pathlib import Path

import click

from kairos_core.config.errors import ConfigError
from kairos_core.config.seed.render import migrate_file


@click.command("migrate")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the YAML to this file instead of standard output.",
)
def migrate(path: str, output: str | None) -> None:
    """Convert the seed system's config.json at PATH to Kairos's YAML format.

    Warnings (settings without an exact equivalent) go to standard error and into the
    file's header. `kairos serve` also accepts the seed file as it is.
    """
    try:
        text, warnings = migrate_file(path)
    except ConfigError as exc:
        raise click.ClickException(exc.render()) from None
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    if output is None:
        click.echo(text, nl=False)
    else:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
