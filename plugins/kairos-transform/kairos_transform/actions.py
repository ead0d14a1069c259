"""Action models of the `transform` settings: header/query, path, body actions and conditions."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from kairos_transform.jsonpath import check_rename, parse_path
from kairos_transform.templates import Replacement, Template

_TOKEN_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_STATUS_CLASS_RE = re.compile(r"^[1-5]xx$")
# Framing and connection headers belong to the gateway: editing them would corrupt messages.
MANAGED_HEADERS = frozenset(
    {
        "connection",
        "content-encoding",
        "content-length",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


class Strict(BaseModel):
    """Base: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _check_template(value: str) -> str:
    Template(value)
    if any(c in value for c in "\r\n\0"):
        raise ValueError("values cannot contain CR, LF or NUL")
    return value


def check_status_selector(value: int | str) -> int | str:
    if isinstance(value, int):
        if not 100 <= value <= 599:
            raise ValueError(f"{value} is not an HTTP status")
        return value
    if not _STATUS_CLASS_RE.match(value.lower()):
        raise ValueError(f"{value!r}: use a status such as 404 or a class such as '5xx'")
    return value.lower()


StatusSelector = Annotated[int | str, Field(union_mode="left_to_right")]


class Condition(Strict):
    """When an action applies; every given test must hold."""

    status: list[StatusSelector] | None = Field(
        None, description="Response only: the backend's status is one of these (404, '5xx')."
    )
    methods: list[str] | None = Field(None, description="The request method is one of these.")
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Each header is present and its value matches this regex ('' = present).",
    )
    absent: list[str] = Field(default_factory=list, description="Headers that must be absent.")

    @field_validator("status")
    @classmethod
    def _valid_status(cls, value: list[int | str] | None) -> list[int | str] | None:
        return None if value is None else [check_status_selector(v) for v in value]

    @field_validator("methods")
    @classmethod
    def _upper(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [m.upper() for m in value]

    @field_validator("headers")
    @classmethod
    def _valid_regexes(cls, value: dict[str, str]) -> dict[str, str]:
        for name, pattern in value.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{name}: invalid regular expression: {exc}") from None
        return value


class _Action(Strict):
    when: Condition | None = Field(None, description="Apply only when this holds.")


class NamedAdd(_Action):
    """Add `name: value` when `name` is absent."""

    action: Literal["add"]
    name: str
    value: str
    _value = field_validator("value")(_check_template)


class NamedSet(_Action):
    """Set `name` to `value`, replacing every existing value."""

    action: Literal["set"]
    name: str
    value: str
    _value = field_validator("value")(_check_template)


class NamedAppend(_Action):
    """Add one more `name: value`, keeping existing values."""

    action: Literal["append"]
    name: str
    value: str
    _value = field_validator("value")(_check_template)


class NamedRemove(_Action):
    """Remove every value of `name`."""

    action: Literal["remove"]
    name: str


class NamedRename(_Action):
    """Move the values of `name` to `to` (replacing what `to` had)."""

    action: Literal["rename"]
    name: str
    to: str


class NamedReplace(_Action):
    """Regex substitution on each value of `name` (`$1`, `${name}` groups; templates)."""

    action: Literal["replace"]
    name: str
    pattern: str
    replacement: str
    all: bool = Field(True, description="Replace every match, not only the first.")

    @model_validator(mode="after")
    def _compiles(self) -> NamedReplace:
        _compile_replacement(self.pattern, self.replacement)
        return self


NamedAction = Annotated[
    NamedAdd | NamedSet | NamedAppend | NamedRemove | NamedRename | NamedReplace,
    Field(discriminator="action"),
]


def _compile_replacement(pattern: str, replacement: str) -> None:
    try:
        Replacement(pattern, replacement)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None


def check_header_actions(actions: list[Any]) -> list[Any]:
    for action in actions:
        for name in (action.name, getattr(action, "to", None)):
            if name is None:
                continue
            if not _TOKEN_RE.match(name):
                raise ValueError(f"{name!r} is not a valid header name")
            if name.lower() in MANAGED_HEADERS:
                raise ValueError(f"{name} is managed by the gateway and cannot be edited")
    return actions


class PathRewrite(_Action):
    """Regex rewrite of the upstream path; the replacement takes `$1` groups and templates."""

    pattern: str
    replacement: str
    all: bool = Field(False, description="Replace every match, not only the first.")

    @model_validator(mode="after")
    def _compiles(self) -> PathRewrite:
        _compile_replacement(self.pattern, self.replacement)
        if "?" in self.replacement or "#" in self.replacement:
            raise ValueError("a path replacement cannot contain '?' or '#': use `query` actions")
        return self


class _BodyAction(_Action):
    path: str = Field(description="Field path: `a.b`, `items.0.id`, `items.*.secret`.")

    @field_validator("path")
    @classmethod
    def _valid_path(cls, value: str) -> str:
        parse_path(value)
        return value


def _check_value_templates(value: Any) -> Any:
    if isinstance(value, str):
        Template(value)
    elif isinstance(value, dict):
        for item in value.values():
            _check_value_templates(item)
    elif isinstance(value, list):
        for item in value:
            _check_value_templates(item)
    return value


class BodyAdd(_BodyAction):
    """Create the field when it is absent."""

    action: Literal["add"]
    value: Any = Field(description="Any JSON value; strings may use templates.")
    _value = field_validator("value")(_check_value_templates)


class BodySet(_BodyAction):
    """Create or replace the field."""

    action: Literal["set"]
    value: Any = Field(description="Any JSON value; strings may use templates.")
    _value = field_validator("value")(_check_value_templates)


class BodyRemove(_BodyAction):
    """Remove the field."""

    action: Literal["remove"]


class BodyRename(_BodyAction):
    """Move the field to another path."""

    action: Literal["rename"]
    to: str

    @model_validator(mode="after")
    def _valid_to(self) -> BodyRename:
        check_rename(parse_path(self.path), parse_path(self.to))
        return self


BodyAction = Annotated[BodyAdd | BodySet | BodyRemove | BodyRename, Field(discriminator="action")]
