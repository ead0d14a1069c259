"""Header actions compiled into closures over a CIMultiDict: add, set, append, remove, rename, replace."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from multidict import CIMultiDict

from kairos_core import RequestContext
from kairos_transform.actions import (
    NamedAdd,
    NamedAppend,
    NamedRemove,
    NamedRename,
    NamedReplace,
    NamedSet,
)
from kairos_transform.conditions import compile_condition
from kairos_transform.templates import Replacement, Template

HeaderEdit = Callable[[RequestContext, CIMultiDict[str], int], None]
NamedActionModel = NamedAdd | NamedSet | NamedAppend | NamedRemove | NamedRename | NamedReplace


def _safe(value: str | None) -> str | None:
    """Refuse rendered values that would split a header (CR/LF/NUL from a claim or query)."""
    if value is None or "\r" in value or "\n" in value or "\0" in value:
        return None
    return value


def _edit(action: NamedActionModel) -> HeaderEdit:
    name = action.name
    if isinstance(action, NamedAdd | NamedSet | NamedAppend):
        return _writer(action.action, name, Template(action.value))
    if isinstance(action, NamedRemove):

        def remove(ctx: RequestContext, headers: CIMultiDict[str], status: int) -> None:
            headers.popall(name, None)

        return remove
    if isinstance(action, NamedRename):
        to = action.to

        def rename(ctx: RequestContext, headers: CIMultiDict[str], status: int) -> None:
            values = headers.popall(name, None)
            if values:
                headers.popall(to, None)
                for value in values:
                    headers.add(to, value)

        return rename
    replacement = Replacement(action.pattern, action.replacement, 0 if action.all else 1)

    def replace(ctx: RequestContext, headers: CIMultiDict[str], status: int) -> None:
        values = headers.getall(name, None)
        if not values:
            return
        edited = [_safe(replacement.apply(ctx, value)) or value for value in values]
        if edited != values:
            headers.popall(name)
            for value in edited:
                headers.add(name, value)

    return replace


def _writer(kind: str, name: str, template: Template) -> HeaderEdit:
    """A closure specialised for add / set / append and for constant values."""
    constant = template.constant
    if constant is not None and kind == "set":
        return lambda ctx, headers, status: headers.__setitem__(name, constant)
    if constant is not None and kind == "append":
        return lambda ctx, headers, status: headers.add(name, constant)
    only_if_absent = kind == "add"
    append = kind == "append"

    def write(ctx: RequestContext, headers: CIMultiDict[str], status: int) -> None:
        if only_if_absent and name in headers:
            return
        value = constant if constant is not None else _safe(template.render(ctx))
        if value is None:
            return
        if append:
            headers.add(name, value)
        else:
            headers[name] = value

    return write


def compile_header_actions(actions: Sequence[NamedActionModel]) -> tuple[HeaderEdit, ...]:
    """One closure per action, each guarded by its `when` condition."""
    out: list[HeaderEdit] = []
    for action in actions:
        edit = _edit(action)
        applies = compile_condition(action.when)
        if applies is not None:
            edit = _guarded(edit, applies)
        out.append(edit)
    return tuple(out)


def _guarded(edit: HeaderEdit, applies: Callable[..., bool]) -> HeaderEdit:
    def guarded(ctx: RequestContext, headers: CIMultiDict[str], status: int) -> None:
        if applies(ctx, headers, status):
            edit(ctx, headers, status)

    return guarded
