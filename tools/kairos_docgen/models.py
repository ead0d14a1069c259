"""Render pydantic models as reference tables: every field's type, default, limits and description."""

from __future__ import annotations

import enum
import ipaddress
import json
import re
import types
import typing
from collections.abc import Iterator
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, ByteSize, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined, to_jsonable_python

_SCALARS: dict[Any, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    type(None): "null",
    Any: "any",
    SecretStr: "secret string",
    ByteSize: "byte size",
    ipaddress.IPv4Network: "IPv4 network",
    ipaddress.IPv6Network: "IPv6 network",
}


def anchor(model: type[BaseModel], prefix: str = "") -> str:
    """The heading anchor of a model's section."""
    return f"{prefix}{model.__name__.lower()}"


def nested_models(root: type[BaseModel]) -> list[type[BaseModel]]:
    """`root` and every model reachable from its fields, breadth first, each once."""
    seen: list[type[BaseModel]] = [root]
    index = 0
    while index < len(seen):
        for field in seen[index].model_fields.values():
            for model in _models_in(field.annotation):
                if model not in seen:
                    seen.append(model)
        index += 1
    return seen


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for arg in get_args(annotation):
        yield from _models_in(arg)


def render_type(
    annotation: Any, linked: set[type[BaseModel]] | None = None, prefix: str = ""
) -> str:
    """A reader's name for a type: `list of ListenerConfig`, `string or null`."""
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is Annotated:
        return render_type(args[0], linked, prefix)
    if origin in (Union, types.UnionType):
        return " or ".join(render_type(arg, linked, prefix) for arg in args)
    if origin is Literal:
        return " \\| ".join(f"`{json.dumps(arg)}`" for arg in args)
    if origin in (list, tuple, set, frozenset, typing.Sequence):
        return f"list of {render_type(args[0], linked, prefix)}" if args else "list"
    if origin is dict:
        return f"mapping of {render_type(args[0], linked, prefix)} to {render_type(args[1], linked, prefix)}"
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if linked is not None and annotation in linked:
            return f"[{annotation.__name__}](#{anchor(annotation, prefix)})"
        return annotation.__name__
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " \\| ".join(f"`{member.value}`" for member in annotation)
    return getattr(annotation, "__name__", str(annotation))


def render_default(field: FieldInfo) -> str:
    """The default value as it would be written in the config file, or *required*."""
    if field.default is PydanticUndefined and field.default_factory is None:
        return "**required**"
    value = (
        field.default_factory()  # type: ignore[call-arg]
        if field.default_factory is not None
        else field.default
    )
    if isinstance(value, BaseModel):
        return "*see its fields*"
    if isinstance(value, ByteSize):
        return f"`{int(value)}` ({value.human_readable(separator=' ')})"
    return f"`{json.dumps(to_jsonable_python(value))}`"


def render_limits(field: FieldInfo) -> str:
    """Constraints from the field and its annotation: `> 0`, `at least 1 item`."""
    notes: list[str] = []
    for item in [*field.metadata, *_annotated_metadata(field.annotation)]:
        for attr, text in (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤")):
            value = getattr(item, attr, None)
            if value is not None and isinstance(item, annotated_types.BaseMetadata | FieldInfo):
                notes.append(f"{text} {value}")
        if isinstance(item, annotated_types.MinLen):
            notes.append(f"at least {item.min_length} item{'s' if item.min_length != 1 else ''}")
        if isinstance(item, annotated_types.MaxLen):
            notes.append(f"at most {item.max_length} items")
    return ", ".join(dict.fromkeys(notes))


def _annotated_metadata(annotation: Any) -> Iterator[Any]:
    if get_origin(annotation) is Annotated:
        yield from get_args(annotation)[1:]
        return
    if get_origin(annotation) in (Union, types.UnionType):
        for arg in get_args(annotation):
            yield from _annotated_metadata(arg)


def _cell(text: str) -> str:
    return re.sub(r"\s*\n\s*", " ", text).replace("|", "\\|")


def model_table(
    model: type[BaseModel], linked: set[type[BaseModel]] | None = None, prefix: str = ""
) -> str:
    """A markdown table of `model`'s fields."""
    rows = ["| field | type | default | description |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        key = field.alias or name
        description = field.description or ""
        limits = render_limits(field)
        if limits:
            description = f"{description} ({limits})" if description else f"Must be {limits}."
        rows.append(
            f"| `{key}` | {render_type(field.annotation, linked, prefix)} | {render_default(field)} "
            f"| {_cell(description)} |"
        )
    return "\n".join(rows)


def model_reference(root: type[BaseModel], level: int = 2, prefix: str = "") -> str:
    """A section per model reachable from `root`: its docstring, then its fields table.

    `prefix` keeps anchors unique when several roots share a page (one per plugin).
    """
    models = nested_models(root)
    linked = set(models)
    parts = []
    for model in models:
        doc = (model.__doc__ or "").strip()
        parts.append(f"{'#' * level} {model.__name__} {{#{anchor(model, prefix)}}}\n")
        if doc:
            parts.append(doc + "\n")
        if model.model_fields:
            parts.append(model_table(model, linked, prefix) + "\n")
        else:
            parts.append("No settings.\n")
    return "\n".join(parts)
