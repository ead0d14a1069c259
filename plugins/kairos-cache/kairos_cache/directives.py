"""Parsing of the header fields caching depends on: Cache-Control, HTTP dates, ETags."""

from __future__ import annotations

from email.utils import parsedate_to_datetime

Directives = dict[str, str | None]


def parse_cache_control(values: list[str]) -> Directives:
    """Cache-Control field lines as `{directive: argument or None}` (names lower-cased)."""
    found: Directives = {}
    for value in values:
        for part in value.split(","):
            name, sep, argument = part.strip().partition("=")
            name = name.strip().lower()
            if not name:
                continue
            arg = argument.strip().strip('"') if sep else None
            found.setdefault(name, arg)
    return found


def seconds(directives: Directives, name: str) -> float | None:
    """A delta-seconds directive (`max-age=60`); None when absent, 0 when malformed."""
    if name not in directives:
        return None
    raw = directives[name]
    if raw is None:
        return 0.0
    try:
        value = int(raw)
    except ValueError:
        return 0.0
    return float(max(value, 0))


def http_date(value: str | None) -> float | None:
    """An HTTP-date as POSIX seconds; None when absent or invalid."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.timestamp()


def etag_matches(if_none_match: str, etag: str) -> bool:
    """Weak comparison of `etag` against an If-None-Match list (RFC 9110 13.1.2)."""
    candidate = if_none_match.strip()
    if candidate == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in _split_tags(candidate))


def _split_tags(value: str) -> list[str]:
    tags: list[str] = []
    current: list[str] = []
    quoted = False
    for char in value:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            tags.append("".join(current))
            current = []
        else:
            current.append(char)
    tags.append("".join(current))
    return [t for t in (tag.strip() for tag in tags) if t]
