"""What every command that talks to a running gateway shares: --url, --token, --json, tables."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import click
from pydantic import BaseModel

from kairos_core.client import (
    DEFAULT_TIMEOUT,
    DEFAULT_URL,
    AdminClient,
    AdminError,
    InvalidResponse,
    Unauthorized,
    Unreachable,
)


@dataclass
class Admin:
    """A command's connection to the admin API and how it should print."""

    client: AdminClient
    as_json: bool

    def emit_json(self, data: Any) -> None:
        """Print `data` (models, lists of models, plain values) as indented JSON."""
        click.echo(json.dumps(_plain(data), indent=2))


def _plain(data: Any) -> Any:
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json")
    if isinstance(data, list | tuple):
        return [_plain(item) for item in data]
    if isinstance(data, dict):
        return {key: _plain(value) for key, value in data.items()}
    return data


def admin_command(func: Callable[..., None]) -> Callable[..., None]:
    """Give a command --url, --token, --timeout and --json, and an `Admin` as first argument.

    An unreachable gateway, a refused token or an admin error become one line on stderr and
    exit status 1.
    """

    @click.option(
        "--url",
        envvar="KAIROS_ADMIN_URL",
        default=DEFAULT_URL,
        show_default=True,
        show_envvar=True,
        help="Base URL of the gateway's admin listener.",
    )
    @click.option(
        "--token",
        envvar="KAIROS_ADMIN_TOKEN",
        show_envvar=True,
        help="Admin bearer token (when the gateway sets admin.token).",
    )
    @click.option(
        "--timeout",
        type=click.FloatRange(min=0.1),
        default=DEFAULT_TIMEOUT,
        show_default=True,
        help="Seconds to wait for the gateway.",
    )
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    @functools.wraps(func)
    def command(url: str, token: str | None, timeout: float, as_json: bool, **kwargs: Any) -> None:
        with AdminClient(url, token, timeout) as client:
            try:
                func(Admin(client, as_json), **kwargs)
            except Unreachable as exc:
                raise click.ClickException(
                    f"{exc.message} (is `kairos serve` running? set --url or KAIROS_ADMIN_URL)"
                ) from None
            except Unauthorized as exc:
                given = "was refused" if token else "is required"
                raise click.ClickException(
                    f"the admin token {given} by {exc.url} (set --token or KAIROS_ADMIN_TOKEN)"
                ) from None
            except InvalidResponse as exc:
                raise click.ClickException(
                    f"{exc.url} answered something unexpected ({exc.message}); is it a Kairos "
                    "admin listener of the same version?"
                ) from None
            except AdminError as exc:
                raise click.ClickException(str(exc)) from None

    return command


def table(
    headers: Sequence[str], rows: Iterable[Sequence[object]], right: Iterable[int] = ()
) -> str:
    """Rows under headers, columns aligned by two spaces (`right` columns right-aligned)."""
    cells = [list(headers), *([str(cell) for cell in row] for row in rows)]
    widths = [max(len(row[index]) for row in cells) for index in range(len(headers))]
    aligned = set(right)
    lines = []
    for row in cells:
        parts = [
            cell.rjust(width) if index in aligned else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def duration(seconds: float | None) -> str:
    """`0.62ms`, `75.0ms`, `1.23s`, or `-` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 0.001:
        return f"{seconds * 1000:.2f}ms"
    if seconds < 1:
        return f"{seconds * 1000:.3g}ms" if seconds >= 0.1 else f"{seconds * 1000:.1f}ms"
    return f"{seconds:.2f}s"


def number(value: float) -> str:
    """A count without a spurious `.0`."""
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"
