"""The hook reference: every hook in `kairos_core.hookspecs`, its signature and its docstring."""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import kairos_core
from kairos_core import hookspecs

_SECTION_RE = re.compile(r"^# -- (?P<title>.+?) -+\s*$")


@dataclass(frozen=True)
class HookDoc:
    """One hook as documented: where it sits, what it takes, what it says about itself."""

    name: str
    section: str
    signature: str
    docstring: str
    firstresult: bool
    historic: bool


def hook_functions(module: ModuleType = hookspecs) -> list[Callable[..., Any]]:
    """The hook specifications of `module`, in source order."""
    marker = f"{module.PROJECT}_spec"
    found = [
        value
        for value in vars(module).values()
        if inspect.isfunction(value) and hasattr(value, marker)
    ]
    return sorted(found, key=lambda fn: fn.__code__.co_firstlineno)


def hook_docs(module: ModuleType = hookspecs) -> list[HookDoc]:
    """Every hook of `module` with the section comment (`# -- name --`) it is listed under."""
    sections: list[tuple[int, str]] = []
    source, start = inspect.getsourcelines(module)
    for number, text in enumerate(source, start=start or 1):
        match = _SECTION_RE.match(text)
        if match:
            sections.append((number, match["title"].strip()))
    marker = f"{module.PROJECT}_spec"
    docs = []
    for fn in hook_functions(module):
        line = fn.__code__.co_firstlineno
        section = next((title for at, title in reversed(sections) if at < line), "hooks")
        options = getattr(fn, marker)
        docs.append(
            HookDoc(
                name=fn.__name__,
                section=section,
                signature=_signature(fn),
                docstring=inspect.getdoc(fn) or "",
                firstresult=bool(options.get("firstresult")),
                historic=bool(options.get("historic")),
            )
        )
    return docs


def _signature(fn: Callable[..., Any]) -> str:
    """`name(arg: Type) -> Result` with the annotations as written in the source."""
    sig = inspect.signature(fn)
    params = ", ".join(
        f"{p.name}: {_annotation(p.annotation)}" if p.annotation is not p.empty else p.name
        for p in sig.parameters.values()
    )
    result = (
        "" if sig.return_annotation is sig.empty else f" -> {_annotation(sig.return_annotation)}"
    )
    return f"{fn.__name__}({params}){result}"


def _annotation(value: Any) -> str:
    return value if isinstance(value, str) else inspect.formatannotation(value)


def used_types(docs: list[HookDoc]) -> list[type]:
    """Public `kairos_core` classes named in the hook signatures, in first-use order."""
    public = {name: getattr(kairos_core, name) for name in kairos_core.__all__}
    found: dict[str, type] = {}
    for doc in docs:
        for word in re.findall(r"[A-Za-z_]+", doc.signature):
            value = public.get(word)
            if inspect.isclass(value):
                found.setdefault(word, value)
    return list(found.values())


def _type_section(cls: type) -> list[str]:
    lines = ["", f"### `{cls.__name__}` {{#{cls.__name__.lower()}}}", "", inspect.getdoc(cls) or ""]
    if dataclasses.is_dataclass(cls):
        lines += ["", "| field | type | default |", "|---|---|---|"]
        for field in dataclasses.fields(cls):
            if isinstance(field.default, type):
                default = f"`{field.default.__name__}`"
            elif field.default is not dataclasses.MISSING:
                default = f"`{field.default!r}`"
            elif field.default_factory is not dataclasses.MISSING:
                default = "*new per instance*"
            else:
                default = "**required**"
            kind = _annotation(field.type)
            lines.append(f"| `{field.name}` | `{kind}` | {default} |")
    return lines


def hooks_page(module: ModuleType = hookspecs) -> str:
    """The markdown page listing every hook."""
    docs = hook_docs(module)
    lines = [
        "# Hook reference",
        "",
        "Generated from `kairos_core/hookspecs.py` on every docs build. Hooks run when a",
        "configuration is loaded (and at start-up), never per request. Implement one with the",
        "`hookimpl` marker from `kairos_core`; the argument names must match the specification",
        "(you may leave out arguments you do not use). See [writing a plugin](../plugins/authoring.md)",
        "for what each registered component does, and the [tutorial](../plugins/tutorial.md)",
        "for a worked example.",
        "",
        "| hook | section | summary |",
        "|---|---|---|",
    ]
    for doc in docs:
        summary = doc.docstring.splitlines()[0] if doc.docstring else "*undocumented*"
        lines.append(f"| [`{doc.name}`](#{doc.name}) | {doc.section} | {summary} |")
    section = None
    for doc in docs:
        if doc.section != section:
            section = doc.section
            lines += ["", f"## {section[:1].upper()}{section[1:]}"]
        lines += ["", f"### `{doc.name}` {{#{doc.name}}}", "", "```python", doc.signature, "```"]
        lines += ["", doc.docstring or "*This hook has no docstring.*"]
        if doc.firstresult:
            lines += ["", "Stops at the first non-None result."]
        if doc.historic:
            lines += ["", "Historic: plugins registered later are called too."]
    lines += [
        "",
        "## Types",
        "",
        "The public classes the hook signatures name (from `kairos_core`).",
    ]
    for cls in used_types(docs):
        lines += _type_section(cls)
    return "\n".join(lines) + "\n"
