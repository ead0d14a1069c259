"""Turn a stored entry into the client's response: full, headers only (HEAD) or 304."""

from __future__ import annotations

from collections.abc import Mapping

from multidict import CIMultiDict

from kairos_cache.directives import etag_matches, http_date
from kairos_cache.entry import CachedResponse
from kairos_core import Response

# RFC 9110 15.4.5: what a 304 carries of the 200 it stands for.
_NOT_MODIFIED_FIELDS = frozenset(
    {"cache-control", "content-location", "date", "etag", "expires", "last-modified", "vary"}
)


def client_not_modified(request_headers: Mapping[str, str], entry: CachedResponse) -> bool:
    """True when the client's own If-None-Match / If-Modified-Since is satisfied by `entry`."""
    if entry.status != 200:
        return False
    if_none_match = request_headers.get("If-None-Match")
    if if_none_match is not None:
        return entry.etag is not None and etag_matches(if_none_match, entry.etag)
    since = request_headers.get("If-Modified-Since")
    if since is None or entry.last_modified is None:
        return False
    modified, since_time = http_date(entry.last_modified), http_date(since)
    return modified is not None and since_time is not None and modified <= since_time


def entry_response(
    entry: CachedResponse,
    now: float,
    state: str,
    *,
    head: bool = False,
    request_headers: Mapping[str, str] | None = None,
    key: str | None = None,
) -> Response:
    """The response served from `entry`, with Age and X-Cache (a 304 when the client may reuse its copy)."""
    if (
        request_headers is not None
        and ("If-None-Match" in request_headers or "If-Modified-Since" in request_headers)
        and client_not_modified(request_headers, entry)
    ):
        headers: CIMultiDict[str] = CIMultiDict(
            (n, v) for n, v in entry.headers if n.lower() in _NOT_MODIFIED_FIELDS
        )
        return _finish(Response(304, headers, b""), entry, now, state, key)
    prepared = entry.prepared
    if prepared is None:
        prepared = entry.prepared = CIMultiDict(entry.headers)
    headers = prepared.copy()
    if head:
        headers["Content-Length"] = str(len(entry.body))
        return _finish(Response(entry.status, headers, b""), entry, now, state, key)
    return _finish(Response(entry.status, headers, entry.body), entry, now, state, key)


def _finish(
    response: Response, entry: CachedResponse, now: float, state: str, key: str | None
) -> Response:
    headers = response.headers
    headers["Age"] = str(int(entry.age(now)))
    headers["X-Cache"] = state
    if key is not None:
        headers["X-Cache-Key"] = key
    return response


def mark(response: Response, state: str, key: str | None = None) -> Response:
    """Label a response that did not come from the cache (MISS or BYPASS)."""
    response.headers["X-Cache"] = state
    if key is not None:
        response.headers["X-Cache-Key"] = key
    return response
