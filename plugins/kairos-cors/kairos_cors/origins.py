"""Origin allow-lists compiled once: exact names, `*.domain` / `:*` wildcards and regexes."""

from __future__ import annotations

import re
from collections.abc import Iterable

_ORIGIN_RE = re.compile(
    r"^(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<host>(\*\.)?[^/:?#*\s]+|\[[0-9a-f:.]+\])"
    r"(:(?P<port>\d{1,5}|\*))?$"
)


def check_origin_pattern(pattern: str) -> str:
    """Validate one `allow_origins` entry and return it in canonical (lower-case) form."""
    if pattern == "*" or pattern == "null":
        return pattern
    value = pattern.strip().lower()
    if value.endswith("/"):
        raise ValueError(f"{pattern!r}: an origin has no path; drop the trailing '/'")
    if not _ORIGIN_RE.match(value):
        raise ValueError(
            f"{pattern!r} is not an origin: expected scheme://host[:port], e.g. "
            "'https://app.example.com', 'https://*.example.com' or 'http://localhost:*'"
        )
    return value


def _wildcard_regex(pattern: str) -> str:
    """A regex for an origin pattern with a `*.` subdomain and/or `:*` port wildcard."""
    found = _ORIGIN_RE.match(pattern)
    assert found is not None
    host = found.group("host")
    port = found.group("port")
    out = re.escape(found.group("scheme")) + "://"
    if host.startswith("*."):
        out += r"(?:[a-z0-9_-]+\.)+" + re.escape(host[2:])
    else:
        out += re.escape(host)
    if port == "*":
        out += r"(?::\d{1,5})?"
    elif port:
        out += ":" + port
    return out


class OriginMatcher:
    """Answers 'is this Origin allowed?' with a bounded per-origin cache."""

    __slots__ = ("_cache", "_exact", "_regexes", "_wildcards", "any")

    def __init__(self, patterns: Iterable[str], regexes: Iterable[str]) -> None:
        canonical = [check_origin_pattern(p) for p in patterns]
        self.any = "*" in canonical
        self._exact = frozenset(p for p in canonical if "*" not in p)
        wildcards = [_wildcard_regex(p) for p in canonical if "*" in p and p != "*"]
        self._wildcards = re.compile("|".join(wildcards)) if wildcards else None
        self._regexes = tuple(re.compile(r) for r in regexes)
        self._cache: dict[str, bool] = {}

    def allows(self, origin: str) -> bool:
        """True when `origin` (the request's Origin header) is allowed."""
        if self.any:
            return True
        cached = self._cache.get(origin)
        if cached is not None:
            return cached
        lowered = origin.lower()
        allowed = (
            lowered in self._exact
            or (self._wildcards is not None and self._wildcards.fullmatch(lowered) is not None)
            or any(regex.fullmatch(origin) is not None for regex in self._regexes)
        )
        if len(self._cache) >= 4096:
            self._cache.clear()
        self._cache[origin] = allowed
        return allowed
