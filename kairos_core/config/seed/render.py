"""Write a converted seed config as native YAML (what `kairos config migrate` prints)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from kairos_core.config.errors import ConfigError
from kairos_core.config.loader import (
    interpolate,
    not_too_deep,
    parse_document,
    validate_config,
)
from kairos_core.config.seed import convert_seed, is_seed_config
from kairos_core.version import __version__


class _MigrationDumper(yaml.SafeDumper):
    """Block style, short scalar lists inline, and a readable anchor for the shared jwt entry."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        """Indent list items under their key, as the rest of the docs write YAML."""
        super().increase_indent(flow, False)

    def generate_anchor(self, node: yaml.Node) -> str:
        """`jwt` for the jwt settings shared by every auth_required route."""
        self.last_anchor_id += 1
        return "jwt" if self.last_anchor_id == 1 else f"shared{self.last_anchor_id}"


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = bool(data) and all(isinstance(item, str | int | float | bool) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_MigrationDumper.add_representer(list, _represent_list)


class _Placeholders(Mapping[str, str]):
    """The environment, with a placeholder for unset variables: migrating needs no secrets."""

    def __getitem__(self, name: str) -> str:
        return os.environ.get(name, "kairos-placeholder")

    def __iter__(self) -> Iterator[str]:
        return iter(os.environ)

    def __len__(self) -> int:
        return len(os.environ)


def migrate_file(path: str | os.PathLike[str]) -> tuple[str, tuple[str, ...]]:
    """Convert the seed config at `path` to native YAML text; return it with the warnings.

    The result is checked against the native schema (`${ENV}` references resolved where the
    variable is set, a placeholder otherwise); plugin settings are checked by `kairos validate`.
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError.single(source, (), "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError.single(source, (), f"cannot read file: {exc}") from None
    with not_too_deep(source):
        return _migrate_text(text, source)


def _migrate_text(text: str, source: str) -> tuple[str, tuple[str, ...]]:
    data, lines = parse_document(text, source)
    if not isinstance(data, dict) or not is_seed_config(data, source, lines):
        raise ConfigError.single(
            source,
            (),
            "not in the seed system's config.json format (no routers, jwt, rate_limit or ai "
            "section): nothing to migrate",
        )
    converted = convert_seed(data, source, lines)
    checked = interpolate(converted.data, _Placeholders(), source, converted.lines)
    validate_config(checked, source, converted.lines)
    return render_yaml(converted.data, source, converted.warnings), converted.warnings


def render_yaml(data: dict[str, Any], source: str, warnings: tuple[str, ...] = ()) -> str:
    """Native config data as YAML, headed by where it came from and what did not convert."""
    header = [
        f"# Kairos configuration converted from {Path(source).name} (the seed system's",
        f"# config.json format) by `kairos config migrate` (Kairos {__version__}).",
        "# Check it with `kairos validate FILE`; see docs/migrating-from-seed.md.",
    ]
    if warnings:
        header += ["#", "# Warnings (settings without an exact equivalent):"]
        header += [f"#  - {warning}" for warning in warnings]
    body = yaml.dump(
        data,
        Dumper=_MigrationDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=4096,
    )
    return "\n".join(header) + "\n\n" + body
