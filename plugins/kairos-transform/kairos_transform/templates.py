"""Value templates (`$(consumer.name)`) and regex replacements (`/v2/$1`), compiled once.

A template is literal text with `$(variable)` or `$(variable|default)` references and `$$`
for a literal `$` (the syntax stays clear of the config loader's `${ENV}` interpolation). A
replacement also takes regex groups: `$1`, `${1}`, `$name`, `${name}`. Rendering returns
None when a variable has no value and no default: the caller then skips the action rather
than send an empty or half-built value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from kairos_core import RequestContext

Getter = Callable[[RequestContext], str | None]
Encoder = Callable[[str], str]

_IDENT_RE = re.compile(r"[A-Za-z0-9_]+")
SIMPLE_VARIABLES = ("client_ip", "request_id", "method", "path", "host", "scheme", "route")
VARIABLE_HELP = (
    "client_ip, request_id, method, path, host, scheme, route, params.NAME, query.NAME, "
    "header.NAME, consumer.name, consumer.metadata.KEY, claims.NAME[.NAME...]"
)


def _text(value: Any) -> str | None:
    """A claim or metadata value as text: strings as they are, the rest as JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def _claim(path: tuple[str, ...]) -> Getter:
    def get(ctx: RequestContext) -> str | None:
        node: Any = ctx.claims
        for key in path:
            if not isinstance(node, Mapping):
                return None
            node = node.get(key)
        return _text(node)

    return get


def variable(name: str) -> Getter:
    """The getter for one template variable; ValueError names the known ones."""
    head, _, rest = name.partition(".")
    if not rest:
        simple: dict[str, Getter] = {
            "client_ip": lambda ctx: ctx.client_ip,
            "request_id": lambda ctx: ctx.request_id,
            "method": lambda ctx: ctx.method,
            "path": lambda ctx: ctx.path,
            "host": lambda ctx: ctx.host,
            "scheme": lambda ctx: ctx.scheme,
            "route": lambda ctx: ctx.route.name,
            "consumer": lambda ctx: ctx.consumer.name if ctx.consumer is not None else None,
        }
        if head in simple:
            return simple[head]
    elif head == "params":
        return lambda ctx: ctx.params.get(rest)
    elif head == "query":
        return lambda ctx: ctx.request.query.get(rest)
    elif head == "header":
        return lambda ctx: ctx.request.headers.get(rest)
    elif head == "consumer" and rest == "name":
        return lambda ctx: ctx.consumer.name if ctx.consumer is not None else None
    elif head == "consumer" and rest.startswith("metadata.") and len(rest) > 9:
        key = rest[9:]
        return lambda ctx: (
            _text(ctx.consumer.metadata.get(key)) if ctx.consumer is not None else None
        )
    elif head == "claims" and all(rest.split(".")):
        return _claim(tuple(rest.split(".")))
    raise ValueError(f"unknown template variable {name!r}; known: {VARIABLE_HELP}")


class Variable:
    """A `$(name|default)` reference inside a template."""

    __slots__ = ("default", "get", "name")

    def __init__(self, name: str, default: str | None) -> None:
        self.name = name
        self.default = default
        self.get = variable(name)


class Group:
    """A regex group reference (`$1`, `${name}`) inside a replacement."""

    __slots__ = ("key",)

    def __init__(self, key: int | str) -> None:
        self.key = key


Part = str | Variable | Group


def _closing(text: str, start: int, close: str, opening: str) -> tuple[str, int]:
    end = text.find(close, start)
    if end < 0:
        raise ValueError(f"unclosed {opening!r} in {text!r}")
    return text[start:end], end + 1


def parse(text: str, groups: re.Pattern[str] | None = None) -> tuple[Part, ...]:
    """Split `text` into literals, `$(variables)` and (when `groups` is a regex) group references."""
    parts: list[Part] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        following = text[i + 1] if i + 1 < len(text) else ""
        ref: Part | None = None
        if char != "$" or not following:
            literal.append(char)
            i += 1
            continue
        if following == "$":
            literal.append("$")
            i += 2
            continue
        if following == "(":
            inner, i = _closing(text, i + 2, ")", "$(")
            name, bar, default = inner.partition("|")
            ref = Variable(name.strip(), default if bar else None)
        elif groups is not None and following == "{":
            name, i = _closing(text, i + 2, "}", "${")
            ref = _group(name, groups, text)
        elif groups is not None and _IDENT_RE.match(text, i + 1):
            found = _IDENT_RE.match(text, i + 1)
            assert found is not None
            ref = _group(found.group(), groups, text)
            i = found.end()
        else:
            literal.append(char)
            i += 1
            continue
        if literal:
            parts.append("".join(literal))
            literal = []
        parts.append(ref)
    if literal:
        parts.append("".join(literal))
    return tuple(parts)


def _group(name: str, pattern: re.Pattern[str], text: str) -> Group:
    if name.isdigit():
        number = int(name)
        if number > pattern.groups:
            raise ValueError(f"group {number} does not exist: the pattern has {pattern.groups}")
        return Group(number)
    if name in pattern.groupindex:
        return Group(name)
    raise ValueError(
        f"{text!r} refers to group {name!r}, which the pattern does not define "
        "(braces end a reference early: ${1}x; template variables are written $(name))"
    )


class Template:
    """A compiled value template; `render` gives the text or None when a value is missing."""

    __slots__ = ("constant", "parts", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.parts = parse(source)
        self.constant = (
            "".join(p for p in self.parts if isinstance(p, str))
            if all(isinstance(p, str) for p in self.parts)
            else None
        )

    def render(self, ctx: RequestContext, encode: Encoder | None = None) -> str | None:
        """The text for this request; variable values pass through `encode` when given."""
        if self.constant is not None:
            return self.constant
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            assert isinstance(part, Variable)
            value = part.get(ctx)
            if value is None:
                value = part.default
                if value is None:
                    return None
            out.append(encode(value) if encode is not None else value)
        return "".join(out)


class Replacement:
    """A regex substitution whose replacement may use groups and template variables."""

    __slots__ = ("count", "parts", "pattern")

    def __init__(self, pattern: str, replacement: str, count: int = 1) -> None:
        self.pattern = re.compile(pattern)
        self.parts = parse(replacement, self.pattern)
        self.count = count

    def apply(self, ctx: RequestContext, text: str, encode: Encoder | None = None) -> str | None:
        """`text` with the substitution made; None when a variable has no value."""
        missing = False

        def expand(match: re.Match[str]) -> str:
            nonlocal missing
            out: list[str] = []
            for part in self.parts:
                if isinstance(part, str):
                    out.append(part)
                elif isinstance(part, Group):
                    out.append(match.group(part.key) or "")
                else:
                    value = part.get(ctx)
                    if value is None:
                        value = part.default
                        if value is None:
                            missing = True
                            return ""
                    out.append(encode(value) if encode is not None else value)
            return "".join(out)

        result = self.pattern.sub(expand, text, count=self.count)
        return None if missing else result
