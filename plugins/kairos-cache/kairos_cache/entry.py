"""What the cache stores, and RFC 9111 rules deciding whether and for how long a response is reusable."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from multidict import CIMultiDict

from kairos_cache.directives import http_date, parse_cache_control, seconds

# Never stored: computed per serve, set by the gateway, or tied to one connection.
_NOT_STORED = frozenset(
    {"age", "content-length", "set-cookie", "x-cache", "x-cache-key", "transfer-encoding"}
)
# Not taken from a 304 when refreshing a stored response (RFC 9111 3.2).
_NOT_REFRESHED = _NOT_STORED | {"content-encoding", "content-range", "content-type"}


@dataclass(frozen=True, slots=True)
class Policy:
    """A route's caching rules beside what the backend says, resolved at build time."""

    statuses: frozenset[int]
    default_ttl: float
    force_ttl: float | None
    stale_while_revalidate: float
    stale_if_error: float
    revalidate_window: float


@dataclass(slots=True)
class VaryMarker:
    """Stored at a primary key whose response varies: the request headers that pick a variant."""

    names: tuple[str, ...]


@dataclass(slots=True)
class CachedResponse:
    """A stored response with the timing facts that make its age computable later."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    response_time: float
    """Clock time when the response (or its last 304 refresh) arrived."""
    initial_age: float
    """The corrected initial age (RFC 9111 4.2.3) at `response_time`."""
    freshness: float
    stale_while_revalidate: float
    stale_if_error: float
    must_revalidate: bool
    etag: str | None
    last_modified: str | None
    vary: tuple[str, ...]
    storage_ttl: float
    prepared: CIMultiDict[str] | None = field(default=None, init=False, repr=False, compare=False)
    """The headers as a multidict, built on first serve and copied for each one after."""

    def age(self, now: float) -> float:
        """The current age in seconds."""
        return self.initial_age + max(0.0, now - self.response_time)

    @property
    def has_validator(self) -> bool:
        """True when a conditional request can revalidate it."""
        return self.etag is not None or self.last_modified is not None

    @property
    def size(self) -> int:
        """Approximate bytes it takes in memory (body, headers twice: stored and prepared)."""
        return len(self.body) + 2 * sum(len(n) + len(v) + 16 for n, v in self.headers) + 256


def stored_headers(headers: CIMultiDict[str]) -> tuple[tuple[str, str], ...]:
    """The header fields worth storing with a response."""
    return tuple((n, v) for n, v in headers.items() if n.lower() not in _NOT_STORED)


def vary_names(headers: CIMultiDict[str]) -> tuple[str, ...] | None:
    """Lower-cased, sorted Vary field names; None for `Vary: *` (never reusable)."""
    names: set[str] = set()
    for value in headers.getall("Vary", ()):
        for part in value.split(","):
            name = part.strip().lower()
            if name == "*":
                return None
            if name:
                names.add(name)
    return tuple(sorted(names))


def evaluate(
    status: int,
    headers: CIMultiDict[str],
    request_time: float,
    response_time: float,
    policy: Policy,
    body: bytes = b"",
) -> CachedResponse | None:
    """The storable form of a backend response, or None when it must not be stored."""
    if status not in policy.statuses or "Set-Cookie" in headers:
        return None
    cc = parse_cache_control(headers.getall("Cache-Control", []))
    if "no-store" in cc or "private" in cc:
        return None
    vary = vary_names(headers)
    if vary is None:
        return None
    date = http_date(headers.get("Date")) or response_time
    try:
        age_value = float(max(int(headers.get("Age", "0")), 0))
    except ValueError:
        age_value = 0.0
    apparent_age = max(0.0, response_time - date)
    initial_age = max(apparent_age, age_value + max(0.0, response_time - request_time))
    freshness = _freshness(cc, headers, date, policy)
    must_revalidate = "must-revalidate" in cc or "proxy-revalidate" in cc
    swr = seconds(cc, "stale-while-revalidate")
    sie = seconds(cc, "stale-if-error")
    swr = policy.stale_while_revalidate if swr is None else swr
    sie = policy.stale_if_error if sie is None else sie
    if must_revalidate:
        swr = sie = 0.0
    etag = headers.get("ETag")
    last_modified = headers.get("Last-Modified")
    keep = policy.revalidate_window if (etag or last_modified) else 0.0
    storage_ttl = freshness - initial_age + max(swr, sie, keep)
    if storage_ttl <= 0:
        return None
    return CachedResponse(
        status=status,
        headers=stored_headers(headers),
        body=body,
        response_time=response_time,
        initial_age=initial_age,
        freshness=freshness,
        stale_while_revalidate=swr,
        stale_if_error=sie,
        must_revalidate=must_revalidate,
        etag=etag,
        last_modified=last_modified,
        vary=vary,
        storage_ttl=storage_ttl,
    )


def _freshness(
    cc: dict[str, str | None], headers: CIMultiDict[str], date: float, policy: Policy
) -> float:
    if policy.force_ttl is not None:
        return policy.force_ttl
    if "no-cache" in cc:
        return 0.0
    for directive in ("s-maxage", "max-age"):
        value = seconds(cc, directive)
        if value is not None:
            return value
    if "Expires" in headers:
        expires = http_date(headers.get("Expires"))
        return max(0.0, expires - date) if expires is not None else 0.0
    return policy.default_ttl


def refreshed(
    entry: CachedResponse,
    not_modified: CIMultiDict[str],
    request_time: float,
    response_time: float,
    policy: Policy,
) -> CachedResponse | None:
    """The stored response updated from a backend's 304 (RFC 9111 4.3.4), or None if no longer storable."""
    updates = {n.lower() for n in not_modified if n.lower() not in _NOT_REFRESHED}
    merged: CIMultiDict[str] = CIMultiDict(
        (n, v) for n, v in entry.headers if n.lower() not in updates
    )
    for name, value in not_modified.items():
        if name.lower() in updates:
            merged.add(name, value)
    fresh = evaluate(entry.status, merged, request_time, response_time, policy, entry.body)
    if fresh is None:
        return None
    return replace(fresh, vary=entry.vary)


def header_pairs(entry: CachedResponse, names: Iterable[str]) -> list[tuple[str, str]]:
    """The stored fields among `names` (lower-case), in stored order."""
    wanted = set(names)
    return [(n, v) for n, v in entry.headers if n.lower() in wanted]
