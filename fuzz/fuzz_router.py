"""Fuzz target: route patterns and request lines through the router, no exception but PatternError."""

from __future__ import annotations

from multidict import CIMultiDict

from kairos_core.router import PatternError, RouteMatch, Router, RouteSpec, normalize_path

FIXED = [
    RouteSpec(0, "/", prefix=True),
    RouteSpec(1, "/api/{version}/users/{id}", methods=frozenset({"GET"})),
    RouteSpec(2, "/files/{rest:path}", hosts=("*.example.com",)),
    RouteSpec(3, "/api", prefix=True, hosts=("api.example.com",), priority=1),
    RouteSpec(4, "/v/%7Euser/", headers={"x-v": "2"}),
]
METHODS = ("GET", "POST", "PUT", "DELETE", "OPTIONS")


def test_one_input(data: bytes) -> None:
    """`patterns\\x00method-byte host\\x00path`: build a router, then route the request."""
    text = data.decode("utf-8", "replace")
    patterns, _, request = text.rpartition("\x00\x00")
    specs = list(FIXED)
    for index, pattern in enumerate(patterns.split("\n")[:6] if patterns else []):
        specs.append(RouteSpec(10 + index, pattern, prefix=index % 2 == 1))
    try:
        router: Router[int] = Router(specs)
    except PatternError:
        router = Router(FIXED)
    method = METHODS[len(request) % len(METHODS)]
    host, _, raw_path = request.partition("\x00")
    headers = CIMultiDict({"X-V": host[:3]})
    for path in (normalize_path(raw_path), "/" + raw_path):
        if path is not None:
            found = router.match(method, host, path, headers)
            assert isinstance(found, RouteMatch | frozenset)
