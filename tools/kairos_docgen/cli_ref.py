"""The CLI reference: every command of the `kairos` click tree with its help and options."""

from __future__ import annotations

from collections.abc import Iterator

import click

_WIDTH = 90


def walk(
    command: click.Command, path: tuple[str, ...], parent: click.Context | None = None
) -> Iterator[tuple[tuple[str, ...], click.Command, click.Context]]:
    """Yield `(path, command, context)` for `command` and every subcommand, depth first."""
    ctx = click.Context(command, info_name=path[-1], parent=parent, terminal_width=_WIDTH)
    ctx.max_content_width = _WIDTH
    yield path, command, ctx
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from walk(sub, (*path, name), ctx)


def cli_page(root: click.Command, name: str = "kairos", builtin: set[str] | None = None) -> str:
    """The markdown page for the whole command tree under `root`."""
    lines = [
        "# Command line reference",
        "",
        "Generated from the click command tree (`kairos_cli.main:cli`) on every docs build,",
        "including commands that installed plugins add through `register_cli_commands`.",
        "Every command also answers `--help`.",
    ]
    entries = list(walk(root, (name,)))
    lines += ["", "| command | summary |", "|---|---|"]
    for path, command, _ctx in entries:
        slug = "-".join(path)
        origin = ""
        if builtin is not None and len(path) > 1 and path[1] not in builtin:
            origin = " *(from a plugin)*"
        summary = command.get_short_help_str(limit=120)
        lines.append(f"| [`{' '.join(path)}`](#{slug}) | {summary}{origin} |")
    for path, command, ctx in entries:
        title = " ".join(path)
        level = "#" * min(len(path) + 1, 4)
        lines += ["", f"{level} `{title}` {{#{'-'.join(path)}}}", ""]
        lines += ["```text", command.get_help(ctx).rstrip(), "```"]
    return "\n".join(lines) + "\n"
