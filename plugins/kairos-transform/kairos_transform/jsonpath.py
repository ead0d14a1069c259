"""Field paths into parsed JSON (`user.address.city`, `items.*.secret`, `items.0.id`).

Segments are separated by `.`; `\\.` is a literal dot and `\\*` a literal star; `*` stands for
every member of an object or element of an array; a number indexes an array (negative counts
from the end). Setting a field creates missing objects on the way; an action whose path
runs into a value of the wrong kind (a string where an object is needed) does nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any


class _Wildcard:
    def __repr__(self) -> str:
        return "*"


WILDCARD = _Wildcard()
Segment = str | _Wildcard
JsonPath = tuple[Segment, ...]


def parse_path(text: str) -> JsonPath:
    """Split a field path into segments; ValueError on an empty segment."""
    segments: list[Segment] = []
    current: list[str] = []
    escaped_star = False
    i = 0
    while i <= len(text):
        char = text[i] if i < len(text) else "."
        if char == "\\" and i + 1 < len(text):
            current.append(text[i + 1])
            escaped_star = escaped_star or text[i + 1] == "*"
            i += 2
            continue
        if char == ".":
            segment = "".join(current)
            if not segment:
                raise ValueError(f"field path {text!r} has an empty segment")
            segments.append(WILDCARD if segment == "*" and not escaped_star else segment)
            current = []
            escaped_star = False
        else:
            current.append(char)
        i += 1
    return tuple(segments)


def _index(segment: str, size: int) -> int | None:
    try:
        index = int(segment)
    except ValueError:
        return None
    if index < 0:
        index += size
    return index if 0 <= index < size else None


def _children(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return list(node.values())
    if isinstance(node, list):
        return list(node)
    return []


def parents(node: Any, path: JsonPath, create: bool) -> Iterator[Any]:
    """The containers that hold the last segment of `path` (creating objects if asked)."""
    if WILDCARD not in path:
        found = _parent(node, path, create)  # the common case: one parent, no recursion
        return iter(()) if found is None else iter((found,))
    return _parents(node, path, create)


def _parent(node: Any, path: JsonPath, create: bool) -> Any:
    for segment in path:
        if isinstance(node, dict):
            if segment not in node:
                if not create:
                    return None
                node[segment] = {}
            node = node[segment]
        elif isinstance(node, list):
            index = _index(segment, len(node))  # type: ignore[arg-type]
            if index is None:
                return None
            node = node[index]
        else:
            return None
    return node if isinstance(node, dict | list) else None


def _parents(node: Any, path: JsonPath, create: bool) -> Iterator[Any]:
    if not path:
        if isinstance(node, dict | list):
            yield node
        return
    segment, rest = path[0], path[1:]
    if isinstance(segment, _Wildcard):
        for child in _children(node):
            yield from _parents(child, rest, create)
        return
    if isinstance(node, dict):
        if segment not in node:
            if not create:
                return
            node[segment] = {}
        yield from _parents(node[segment], rest, create)
    elif isinstance(node, list):
        index = _index(segment, len(node))
        if index is not None:
            yield from _parents(node[index], rest, create)


def _fresh(value: Any) -> Any:
    return copy.deepcopy(value) if isinstance(value, dict | list) else value


def set_field(doc: Any, path: JsonPath, value: Any, only_if_absent: bool = False) -> None:
    """Set the field at `path` (create it; replace it unless `only_if_absent`)."""
    last = path[-1]
    for parent in parents(doc, path[:-1], create=True):
        if isinstance(parent, dict):
            if isinstance(last, _Wildcard):
                if not only_if_absent:
                    for key in parent:
                        parent[key] = _fresh(value)
            elif not (only_if_absent and last in parent):
                parent[last] = _fresh(value)
        elif not only_if_absent:
            if isinstance(last, _Wildcard):
                parent[:] = [_fresh(value) for _ in parent]
            else:
                index = _index(last, len(parent))
                if index is not None:
                    parent[index] = _fresh(value)


def remove_field(doc: Any, path: JsonPath) -> list[Any]:
    """Remove the field(s) at `path`; returns the removed values."""
    last = path[-1]
    removed: list[Any] = []
    for parent in parents(doc, path[:-1], create=False):
        if isinstance(last, _Wildcard):
            removed.extend(_children(parent))
            parent.clear()
        elif isinstance(parent, dict):
            if last in parent:
                removed.append(parent.pop(last))
        else:
            index = _index(last, len(parent))
            if index is not None:
                removed.append(parent.pop(index))
    return removed


def rename_field(doc: Any, path: JsonPath, to: JsonPath) -> None:
    """Move the field at `path` to `to` (replacing what is there)."""
    if path[:-1] == to[:-1] and isinstance(path[-1], str) and isinstance(to[-1], str):
        old, new = path[-1], to[-1]
        for parent in parents(doc, path[:-1], create=False):
            if isinstance(parent, dict) and old in parent:
                parent[new] = parent.pop(old)
        return
    removed = remove_field(doc, path)
    if removed:
        set_field(doc, to, removed[-1])


def check_rename(path: JsonPath, to: JsonPath) -> None:
    """Wildcards only when the field stays in the same object (a rename of its key)."""
    same_parent = path[:-1] == to[:-1]
    if WILDCARD in (path[-1], to[-1]):
        raise ValueError("rename needs a field name as the last segment, not '*'")
    if not same_parent and (WILDCARD in path or WILDCARD in to):
        raise ValueError(
            "a rename with '*' must keep the field in the same object (change only the last segment)"
        )
