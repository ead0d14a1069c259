"""Route lookup: a segment trie per host and priority, so cost grows with the path, not the routes.

Precedence, highest first:
1. explicit `priority` (a higher value wins over any lower-priority match);
2. host: exact host, then the longest matching `*.suffix` wildcard, then host-less routes;
3. path, segment by segment: static segment > `{param}` > `{name:path}` catch-all / prefix;
4. at the same node: routes with header conditions first, then the order in the config.
A route that matches the path but not the method is skipped (a less specific route may take
the request); if no route takes it, the result lists the methods that would have (405).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar
from urllib.parse import unquote

T = TypeVar("T")

_PARAM, _CATCH_ALL = 1, 2
_CACHE_SIZE = 4096
_CACHE_PATH_LIMIT = 256


class PatternError(ValueError):
    """A route path pattern that cannot be compiled."""


@dataclass(frozen=True, slots=True)
class RouteSpec(Generic[T]):
    """What the router needs to know about one route; `target` is returned on a match."""

    target: T
    path: str
    prefix: bool = False
    methods: frozenset[str] | None = None
    hosts: tuple[str, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    priority: int = 0


@dataclass(frozen=True, slots=True)
class RouteMatch(Generic[T]):
    """A successful lookup: the route's target and its raw (still percent-encoded) params."""

    target: T
    params: dict[str, str]
    matched_prefix: str


@dataclass(frozen=True, slots=True)
class _Entry(Generic[T]):
    """A route as the lookup reads it: copied from its spec so a match reads only this."""

    order: int
    param_names: tuple[str, ...]
    catch_all: str | None
    prefix_path: str
    target: T
    methods: frozenset[str] | None
    headers: tuple[tuple[str, str], ...] | None
    prefix: bool

    def sort_key(self) -> tuple[int, int]:
        return (0 if self.headers else 1, self.order)


class _Node(Generic[T]):
    """One path segment's node; containers stay None until used (fewer objects per lookup)."""

    __slots__ = ("catch_all", "exact", "param", "prefix", "static")

    def __init__(self) -> None:
        self.static: dict[str, _Node[T]] | None = None
        self.param: _Node[T] | None = None
        self.exact: list[_Entry[T]] | None = None
        self.prefix: list[_Entry[T]] | None = None
        self.catch_all: list[_Entry[T]] | None = None


def _added(entries: list[_Entry[T]] | None, entry: _Entry[T]) -> list[_Entry[T]]:
    """`entries` with `entry` in precedence order (header conditions first, then config order)."""
    return sorted([*(entries or ()), entry], key=_Entry.sort_key)


def parse_pattern(path: str) -> list[tuple[int, str]]:
    """Split a path pattern into (kind, text) segments: static, `{param}` or `{name:path}`."""
    if not path.startswith("/"):
        raise PatternError(f"{path!r}: a path pattern starts with '/'")
    parts = path[1:].split("/")
    out: list[tuple[int, str]] = []
    seen: set[str] = set()
    for index, part in enumerate(parts):
        if part.startswith("{") and part.endswith("}"):
            inner = part[1:-1]
            name, _, kind = inner.partition(":")
            if not name.isidentifier():
                raise PatternError(f"{path!r}: parameter name {name!r} is not an identifier")
            if name in seen:
                raise PatternError(f"{path!r}: parameter {name!r} appears twice")
            seen.add(name)
            if kind == "path":
                if index != len(parts) - 1:
                    raise PatternError(f"{path!r}: a {{{name}:path}} catch-all must be last")
                out.append((_CATCH_ALL, name))
            elif kind:
                raise PatternError(f"{path!r}: unknown parameter type {kind!r} (only 'path')")
            else:
                out.append((_PARAM, name))
        elif "{" in part or "}" in part:
            raise PatternError(f"{path!r}: a parameter must fill a whole segment: {part!r}")
        else:
            out.append((0, sys.intern(normalize_segment(part))))
    return out


class _Trie(Generic[T]):
    """A segment trie holding the routes of one (priority, host) slot."""

    def __init__(self) -> None:
        self.root: _Node[T] = _Node()

    def insert(self, entry: _Entry[T], segments: list[tuple[int, str]]) -> None:
        node = self.root
        for kind, text in segments:
            if kind == _CATCH_ALL:
                node.catch_all = _added(node.catch_all, entry)
                return
            if kind == _PARAM:
                if node.param is None:
                    node.param = _Node()
                node = node.param
            else:
                if node.static is None:
                    node.static = {}
                node = node.static.setdefault(text, _Node())
        if entry.prefix:
            node.prefix = _added(node.prefix, entry)
        else:
            node.exact = _added(node.exact, entry)

    def lookup(
        self,
        segs: Sequence[str],
        method: str,
        headers: Mapping[str, str],
        allowed: set[str],
    ) -> RouteMatch[T] | None:
        return _search(self.root, segs, 0, [], method, headers, allowed)


def _search(
    node: _Node[T],
    segs: Sequence[str],
    i: int,
    values: list[str],
    method: str,
    headers: Mapping[str, str],
    allowed: set[str],
) -> RouteMatch[T] | None:
    if i == len(segs):
        found = None
        if node.exact is not None:
            found = _pick(node.exact, values, None, method, headers, allowed)
        if found is None and node.prefix is not None:
            found = _pick(node.prefix, values, None, method, headers, allowed)
        return found
    seg = segs[i]
    static = node.static
    if static is not None:
        child = static.get(seg)
        if child is not None:
            found = _search(child, segs, i + 1, values, method, headers, allowed)
            if found is not None:
                return found
    param = node.param
    if param is not None and seg:
        values.append(seg)
        found = _search(param, segs, i + 1, values, method, headers, allowed)
        values.pop()
        if found is not None:
            return found
    if node.catch_all is not None:
        found = _pick(node.catch_all, values, "/".join(segs[i:]), method, headers, allowed)
        if found is not None:
            return found
    if node.prefix is not None:
        return _pick(node.prefix, values, None, method, headers, allowed)
    return None


def _pick(
    entries: list[_Entry[T]],
    values: list[str],
    rest: str | None,
    method: str,
    headers: Mapping[str, str],
    allowed: set[str],
) -> RouteMatch[T] | None:
    for entry in entries:
        conditions = entry.headers
        if conditions is not None and any(headers.get(k) != v for k, v in conditions):
            continue
        methods = entry.methods
        if methods is not None and method not in methods:
            allowed.update(methods)
            continue
        params = dict(zip(entry.param_names, values, strict=True)) if entry.param_names else {}
        if entry.catch_all is not None:
            params[entry.catch_all] = rest or ""
        return RouteMatch(entry.target, params, entry.prefix_path)
    return None


class _Slot(Generic[T]):
    """The tries of one priority level, indexed by host."""

    def __init__(self) -> None:
        self.exact_hosts: dict[str, _Trie[T]] = {}
        self.wildcards: dict[str, _Trie[T]] = {}
        self.hostless: _Trie[T] | None = None
        self.wildcard_depths: list[int] = []

    def tries_for(self, host: str) -> Iterable[_Trie[T]]:
        trie = self.exact_hosts.get(host)
        if trie is not None:
            yield trie
        if self.wildcards:
            labels = host.split(".")
            for depth in self.wildcard_depths:
                if len(labels) > depth:
                    trie = self.wildcards.get(".".join(labels[-depth:]))
                    if trie is not None:
                        yield trie
        if self.hostless is not None:
            yield self.hostless


class Router(Generic[T]):
    """Finds the route for a request; built once per configuration."""

    def __init__(self, routes: Iterable[RouteSpec[T]]) -> None:
        slots: dict[int, _Slot[T]] = {}
        uses_headers = False
        shared_names: dict[tuple[str, ...], tuple[str, ...]] = {}  # one tuple per distinct list
        for order, spec in enumerate(routes):
            uses_headers = uses_headers or bool(spec.headers)
            path = spec.path.rstrip("/") or "/" if spec.prefix else spec.path
            segments = parse_pattern(path)
            kinds = [kind for kind, _ in segments]
            if spec.prefix and kinds and kinds[-1] == _CATCH_ALL:
                raise PatternError(f"{spec.path!r}: a prefix cannot end in a catch-all")
            names = tuple(text for kind, text in segments if kind == _PARAM)
            entry = _Entry(
                order=order,
                param_names=shared_names.setdefault(names, names),
                catch_all=next((text for kind, text in segments if kind == _CATCH_ALL), None),
                prefix_path=path.rstrip("/") if spec.prefix else "",
                target=spec.target,
                methods=spec.methods,
                headers=tuple(spec.headers.items()) or None,
                prefix=spec.prefix,
            )
            if spec.prefix and segments == [(0, "")]:
                segments = []  # prefix "/" matches everything
            slot = slots.setdefault(spec.priority, _Slot())
            for trie in self._tries_of(slot, spec.hosts):
                trie.insert(entry, segments)
        self._slots = [slots[p] for p in sorted(slots, reverse=True)]
        self._cache: dict[tuple[str, str, str], RouteMatch[T] | frozenset[str]] | None = (
            None if uses_headers else {}
        )
        for slot in self._slots:
            slot.wildcard_depths = sorted(
                {suffix.count(".") + 1 for suffix in slot.wildcards}, reverse=True
            )

    @staticmethod
    def _tries_of(slot: _Slot[T], hosts: tuple[str, ...]) -> list[_Trie[T]]:
        if not hosts:
            if slot.hostless is None:
                slot.hostless = _Trie()
            return [slot.hostless]
        tries = []
        for host in hosts:
            if host.startswith("*."):
                tries.append(slot.wildcards.setdefault(host[2:], _Trie()))
            else:
                tries.append(slot.exact_hosts.setdefault(host, _Trie()))
        return tries

    def match(
        self, method: str, host: str, path: str, headers: Mapping[str, str]
    ) -> RouteMatch[T] | frozenset[str]:
        """The matching route, or the set of methods other routes on this path allow (405).

        Results are memoised per (method, host, path) when no route looks at headers; the
        returned `params` dict is shared and must not be modified.
        """
        cache = self._cache
        if cache is None or len(path) > _CACHE_PATH_LIMIT:
            return self._match(method, host, path, headers)
        key = (method, host, path)
        found = cache.get(key)
        if found is None:
            found = self._match(method, host, path, headers)
            if len(cache) >= _CACHE_SIZE:
                cache.clear()
            cache[key] = found
        return found

    def _match(
        self, method: str, host: str, path: str, headers: Mapping[str, str]
    ) -> RouteMatch[T] | frozenset[str]:
        segs = split_path(path)
        allowed: set[str] = set()
        for slot in self._slots:
            for trie in slot.tries_for(host):
                found = trie.lookup(segs, method, headers, allowed)
                if found is not None:
                    return found
        return frozenset(allowed)


def split_path(path: str) -> list[str]:
    """Split a normalised absolute path into segments (`/` gives `['']`)."""
    return path[1:].split("/")


_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def normalize_segment(segment: str) -> str:
    """Decode percent-encoded unreserved characters only (RFC 3986 6.2.2.2)."""
    if "%" not in segment:
        return segment
    out = []
    i = 0
    while i < len(segment):
        ch = segment[i]
        if ch == "%" and _is_hex(segment[i + 1 : i + 3]):
            decoded = chr(int(segment[i + 1 : i + 3], 16))
            if decoded in _UNRESERVED:
                out.append(decoded)
            else:
                out.append("%" + segment[i + 1 : i + 3].upper())
            i += 3
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _is_hex(text: str) -> bool:
    return len(text) == 2 and all(c in "0123456789abcdefABCDEF" for c in text)


def normalize_path(raw_path: str) -> str | None:
    """Normalise a raw request path (no query): decode unreserved escapes, resolve dot segments.

    Returns None when the path escapes above the root or is not absolute; such requests are
    refused instead of being guessed at.
    """
    if not raw_path.startswith("/"):
        return None
    if "%" not in raw_path and "/." not in raw_path:
        return raw_path
    out: list[str] = []
    segments = raw_path[1:].split("/")
    last = len(segments) - 1
    for index, segment in enumerate(segments):
        segment = normalize_segment(segment)
        if segment == ".":
            if index == last:
                out.append("")
            continue
        if segment == "..":
            if not out:
                return None
            out.pop()
            if index == last:
                out.append("")
            continue
        out.append(segment)
    return "/" + "/".join(out)


def decode_params(params: dict[str, str]) -> dict[str, str]:
    """Percent-decode raw path parameters for plugins and templates."""
    return {k: unquote(v) if "%" in v else v for k, v in params.items()}
