"""Read a config file (YAML or JSON), interpolate `${VAR}`, and validate it into models."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Hashable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from kairos_core.config.errors import ConfigError, ConfigProblem, Loc, problems_from_validation
from kairos_core.config.models import GatewayConfig
from kairos_core.config.seed import convert_seed, is_seed_config

MAX_NODES = 1_000_000
"""Most values a document may expand to: a few YAML aliases can otherwise stand for billions."""
_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}|\$\$")


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """A validated configuration plus where it came from, for locating later errors."""

    config: GatewayConfig
    source: str
    lines: Mapping[Loc, int] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    env_values: frozenset[str] = frozenset()
    """Values taken from the environment (`${VAR}`): treated as secrets when the config is shown."""

    def error(self, loc: Loc, message: str) -> ConfigError:
        """A ConfigError for `loc` in this file, with its line when known."""
        return ConfigError(self.source, [self.problem(loc, message)])

    def problem(self, loc: Loc, message: str) -> ConfigProblem:
        """A problem for `loc` in this file, with its line when known."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(loc[:end])
            if line is not None:
                return ConfigProblem(loc, message, line)
        return ConfigProblem(loc, message)

    def validation_error(self, exc: ValidationError, prefix: Loc) -> ConfigError:
        """Turn a plugin model's ValidationError into a ConfigError under `prefix`."""
        return ConfigError(self.source, problems_from_validation(exc, prefix, self.lines))


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> LoadedConfig:
    """Load and validate the config file at `path`; raise ConfigError naming what is wrong."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError.single(source, (), "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError.single(source, (), f"cannot read file: {exc}") from None
    return load_config_text(text, source, env)


def load_config_text(
    text: str, source: str = "<config>", env: Mapping[str, str] | None = None
) -> LoadedConfig:
    """Parse and validate config text; JSON when it looks like JSON, YAML otherwise.

    A document in the seed system's `config.json` format is converted first; what has no
    equivalent is listed in the result's `warnings`.
    """
    with not_too_deep(source):
        return _load_text(text, source, env)


@contextmanager
def not_too_deep(source: str) -> Iterator[None]:
    """Turn a RecursionError (data nested thousands deep) into a ConfigError naming `source`."""
    try:
        yield
    except RecursionError:
        raise ConfigError.single(source, (), "the document is nested too deeply") from None


def _load_text(text: str, source: str, env: Mapping[str, str] | None) -> LoadedConfig:
    data, lines = parse_document(text, source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError.single(source, (), "the top level must be a mapping", 1)
    warnings: tuple[str, ...] = ()
    if is_seed_config(data, source, lines):
        converted = convert_seed(data, source, lines)
        data, lines, warnings = converted.data, converted.lines, converted.warnings
    substituted: set[str] = set()
    data = interpolate(data, os.environ if env is None else env, source, lines, found=substituted)
    loaded = validate_config(data, source, lines, warnings)
    return dataclasses.replace(loaded, env_values=frozenset(v for v in substituted if len(v) >= 4))


def validate_config(
    data: dict[str, Any],
    source: str = "<config>",
    lines: Mapping[Loc, int] | None = None,
    warnings: tuple[str, ...] = (),
) -> LoadedConfig:
    """Validate already-parsed config data."""
    lines = lines or {}
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, problems_from_validation(exc, (), lines)) from None
    return LoadedConfig(config, source, lines, warnings)


def parse_document(text: str, source: str) -> tuple[Any, dict[Loc, int]]:
    """Parse YAML or JSON text into data plus a map from field path to line number."""
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError.single(source, (), f"invalid JSON: {exc.msg}", exc.lineno) from None
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            node = None
        return data, _line_map(node) if node is not None else {}
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None and _expanded_size(node, {}) > MAX_NODES:
            raise ConfigError.single(
                source, (), f"the document expands to more than {MAX_NODES} values (YAML aliases)"
            )
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise ConfigError.single(source, (), f"invalid YAML: {exc.problem}", line) from None
    except yaml.YAMLError as exc:
        raise ConfigError.single(source, (), f"invalid YAML: {exc}") from None
    return data, _line_map(node) if node is not None else {}


def _expanded_size(node: yaml.Node, seen: dict[int, int]) -> int:
    """How many values `node` stands for once its aliases are expanded (each node counted once)."""
    size = seen.get(id(node))
    if size is None:
        size = 1
        if isinstance(node, yaml.MappingNode):
            size += sum(_expanded_size(k, seen) + _expanded_size(v, seen) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            size += sum(_expanded_size(item, seen) for item in node.value)
        seen[id(node)] = size
    return size


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses duplicate keys instead of silently keeping the last."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a scalar", key_node.start_mark
                )
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _line_map(root: yaml.Node) -> dict[Loc, int]:
    lines: dict[Loc, int] = {}

    def walk(node: yaml.Node, loc: Loc) -> None:
        lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = key_node.value
                lines[(*loc, key)] = key_node.start_mark.line + 1
                walk(value_node, (*loc, key))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, (*loc, index))

    walk(root, ())
    return lines


def interpolate(
    data: Any,
    env: Mapping[str, str],
    source: str,
    lines: Mapping[Loc, int],
    loc: Loc = (),
    found: set[str] | None = None,
) -> Any:
    """Replace `${VAR}` and `${VAR:-default}` in every string value; `$$` is a literal `$`."""
    if isinstance(data, str):
        if "$" not in data:
            return data

        def substitute(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name, default = match.group(1), match.group(2)
            value = env.get(name)
            if value is None or (value == "" and default is not None):
                if default is None:
                    line = next(
                        (lines[loc[:n]] for n in range(len(loc), -1, -1) if loc[:n] in lines), None
                    )
                    raise ConfigError.single(
                        source,
                        loc,
                        f"environment variable {name} is not set (use ${{{name}:-default}} "
                        "to give a default)",
                        line,
                    )
                return default
            if found is not None:
                found.add(value)
            return value

        return _ENV_RE.sub(substitute, data)
    if isinstance(data, dict):
        return {k: interpolate(v, env, source, lines, (*loc, k), found) for k, v in data.items()}
    if isinstance(data, list):
        return [interpolate(v, env, source, lines, (*loc, i), found) for i, v in enumerate(data)]
    return data
