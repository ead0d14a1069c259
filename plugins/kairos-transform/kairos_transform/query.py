"""Query-string actions: edits keep untouched parameters byte for byte, in their order."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from urllib.parse import quote, unquote_plus

from kairos_core import RequestContext
from kairos_transform.actions import (
    NamedAdd,
    NamedAppend,
    NamedRemove,
    NamedRename,
    NamedReplace,
    NamedSet,
)
from kairos_transform.conditions import Predicate, compile_condition
from kairos_transform.templates import Replacement, Template

Param = tuple[str, str]
"""(decoded name, the raw `name=value` text as received or built)."""
QueryEdit = Callable[[RequestContext, list[Param]], list[Param]]
NamedActionModel = NamedAdd | NamedSet | NamedAppend | NamedRemove | NamedRename | NamedReplace


def encode(text: str) -> str:
    """Percent-encode a query name or value."""
    return quote(text, safe="")


def parse_query(query: str) -> list[Param]:
    """Split a raw query string into parameters, keeping each one's raw text."""
    out: list[Param] = []
    for part in query.split("&"):
        if part:
            out.append((unquote_plus(part.partition("=")[0]), part))
    return out


def _value(raw: str) -> str:
    return unquote_plus(raw.partition("=")[2])


def _edit(action: NamedActionModel) -> QueryEdit:
    name = action.name
    raw_name = encode(name)
    if isinstance(action, NamedAdd | NamedSet | NamedAppend):
        template = Template(action.value)
        kind = action.action

        def write(ctx: RequestContext, params: list[Param]) -> list[Param]:
            present = any(n == name for n, _ in params)
            if kind == "add" and present:
                return params
            value = template.render(ctx)
            if value is None:
                return params
            param = (name, f"{raw_name}={encode(value)}")
            if kind == "set" and present:
                first = next(i for i, (n, _) in enumerate(params) if n == name)
                rest = [p for p in params[first + 1 :] if p[0] != name]
                return [*params[:first], param, *rest]
            return [*params, param]

        return write
    if isinstance(action, NamedRemove):
        return lambda ctx, params: [p for p in params if p[0] != name]
    if isinstance(action, NamedRename):
        to = action.to
        raw_to = encode(to)

        def rename(ctx: RequestContext, params: list[Param]) -> list[Param]:
            if not any(n == name for n, _ in params):
                return params
            out: list[Param] = []
            for n, raw in params:
                if n == to:
                    continue  # a rename replaces what the target had
                if n == name:
                    _, eq, value = raw.partition("=")
                    out.append((to, raw_to + eq + value))
                else:
                    out.append((n, raw))
            return out

        return rename
    replacement = Replacement(action.pattern, action.replacement, 0 if action.all else 1)

    def replace(ctx: RequestContext, params: list[Param]) -> list[Param]:
        out: list[Param] = []
        for n, raw in params:
            if n == name:
                edited = replacement.apply(ctx, _value(raw))
                if edited is not None:
                    raw = f"{raw.partition('=')[0]}={encode(edited)}"
            out.append((n, raw))
        return out

    return replace


def compile_query_actions(
    actions: Sequence[NamedActionModel],
) -> Callable[[RequestContext], None] | None:
    """A function that edits `ctx.query_string`, or None when there are no query actions."""
    if not actions:
        return None
    steps: list[tuple[QueryEdit, Predicate | None]] = [
        (_edit(a), compile_condition(a.when)) for a in actions
    ]

    def edit_query(ctx: RequestContext) -> None:
        params = parse_query(ctx.query_string)
        headers = ctx.headers
        for edit, applies in steps:
            if applies is None or applies(ctx, headers, 0):
                params = edit(ctx, params)
        ctx.query_string = "&".join(raw for _, raw in params)

    return edit_query
