"""`kairos plugins new NAME`: scaffold a plugin distribution that installs and tests as it is."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from string import Template

import click

_NAME_RE = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
_TEMPLATES = files("kairos_cli").joinpath("templates", "plugin")


@dataclass(frozen=True)
class PluginNames:
    """The names one plugin distribution uses, derived from the component name."""

    name: str
    """Component and entry-point name, as written in configs (`my-filter`)."""
    dist: str
    """Distribution name (`kairos-my-filter`)."""
    package: str
    """Import package (`kairos_my_filter`)."""
    config_class: str
    """Its config model (`MyFilterConfig`)."""
    header: str
    """The header the scaffolded stage sets (`X-My-Filter`)."""

    @classmethod
    def from_argument(cls, argument: str) -> PluginNames:
        """Names from `NAME` or `kairos-NAME`; raise ValueError for an unusable name."""
        if not _NAME_RE.match(argument):
            raise ValueError(
                "use lower-case letters and digits, words joined by '-' or '_' (e.g. my-filter)"
            )
        name = argument.removeprefix("kairos-")
        words = re.split(r"[-_]", name)
        return cls(
            name=name,
            dist=f"kairos-{name}",
            package="kairos_" + name.replace("-", "_"),
            config_class="".join(w.capitalize() for w in words) + "Config",
            header="X-" + "-".join(w.capitalize() for w in words),
        )


def render_files(names: PluginNames, description: str) -> dict[str, str]:
    """Relative path -> content of every file of the new distribution."""
    values = {
        "name": names.name,
        "dist": names.dist,
        "package": names.package,
        "config_class": names.config_class,
        "header": names.header,
        "description": description,
        "description_literal": json.dumps(description),
    }
    layout = {
        "pyproject.toml": "pyproject.toml.tmpl",
        "README.md": "README.md.tmpl",
        f"{names.package}/__init__.py": "package__init__.py.tmpl",
        f"{names.package}/py.typed": None,
        f"tests/test_{names.package}.py": "test_package.py.tmpl",
    }
    out = {}
    for path, template in layout.items():
        text = "" if template is None else _TEMPLATES.joinpath(template).read_text("utf-8")
        out[path] = Template(text).substitute(values)
    return out


def scaffold(target: Path, names: PluginNames, description: str) -> list[Path]:
    """Write the distribution under `target` (which must not exist); return the files written."""
    if target.exists():
        raise FileExistsError(f"{target} already exists; choose another name or --directory")
    written = []
    for relative, text in render_files(names, description).items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


@click.command("new")
@click.argument("name")
@click.option(
    "--directory",
    "-d",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where to create the kairos-NAME folder.",
)
@click.option(
    "--description",
    default="A Kairos plugin.",
    show_default=True,
    help="One line for the package metadata and README.",
)
def new_plugin(name: str, directory: Path, description: str) -> None:
    """Create a plugin distribution kairos-NAME: pyproject with the entry point, module, tests."""
    try:
        names = PluginNames.from_argument(name)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="NAME") from None
    if any(char in description for char in '"\\\n'):
        raise click.BadParameter(
            "one line, without double quotes or backslashes", param_hint="--description"
        )
    target = directory / names.dist
    try:
        written = scaffold(target, names, description)
    except FileExistsError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Created {names.dist} (component {names.name!r}) in {target}:")
    for path in written:
        click.echo(f"  {path.relative_to(target)}")
    click.echo("Next:")
    click.echo(f'  pip install -e "{target}[test]"')
    click.echo("  kairos plugins list")
    click.echo(f"  pytest {target / 'tests'}")
