"""Route lookup: precedence, hosts, methods, headers, normalisation and scale."""

from __future__ import annotations

import random

import pytest

from kairos_core.router import PatternError, RouteMatch, Router, RouteSpec, normalize_path


def make(*specs: RouteSpec[str]) -> Router[str]:
    return Router(list(specs))


def target(
    router: Router[str],
    path: str,
    method: str = "GET",
    host: str = "",
    headers: dict[str, str] | None = None,
) -> str | frozenset[str]:
    found = router.match(method, host, path, headers or {})
    return found.target if isinstance(found, RouteMatch) else found


def test_static_beats_param_beats_catch_all() -> None:
    router = make(
        RouteSpec("catch", "/files/{rest:path}"),
        RouteSpec("param", "/files/{name}"),
        RouteSpec("static", "/files/readme"),
    )
    assert target(router, "/files/readme") == "static"
    assert target(router, "/files/other") == "param"
    assert target(router, "/files/a/b/c") == "catch"


def test_params_and_catch_all_values() -> None:
    router = make(RouteSpec("r", "/u/{id}/posts/{post}"), RouteSpec("c", "/s/{rest:path}"))
    found = router.match("GET", "", "/u/7/posts/x%20y", {})
    assert isinstance(found, RouteMatch)
    assert found.params == {"id": "7", "post": "x%20y"}
    found = router.match("GET", "", "/s/a/b", {})
    assert isinstance(found, RouteMatch)
    assert found.params == {"rest": "a/b"}


def test_backtracking_to_a_less_specific_route() -> None:
    router = make(RouteSpec("static", "/a/b/c"), RouteSpec("param", "/a/{x}/d"))
    assert target(router, "/a/b/d") == "param"


def test_prefix_is_segment_bounded() -> None:
    router = make(RouteSpec("api", "/api", prefix=True), RouteSpec("root", "/", prefix=True))
    assert target(router, "/api") == "api"
    assert target(router, "/api/") == "api"
    assert target(router, "/api/x/y") == "api"
    assert target(router, "/apix") == "root"
    assert target(router, "/") == "root"


def test_exact_beats_prefix_on_the_same_path() -> None:
    router = make(RouteSpec("prefix", "/a", prefix=True), RouteSpec("exact", "/a"))
    assert target(router, "/a") == "exact"
    assert target(router, "/a/b") == "prefix"


def test_host_before_hostless_and_exact_before_wildcard() -> None:
    router = make(
        RouteSpec("any", "/x"),
        RouteSpec("wild", "/x", hosts=("*.example.com",)),
        RouteSpec("deep", "/x", hosts=("*.api.example.com",)),
        RouteSpec("exact", "/x", hosts=("www.example.com",)),
    )
    assert target(router, "/x", host="www.example.com") == "exact"
    assert target(router, "/x", host="shop.example.com") == "wild"
    assert target(router, "/x", host="v1.api.example.com") == "deep"
    assert target(router, "/x", host="example.com") == "any"
    assert target(router, "/x", host="other.org") == "any"


def test_explicit_priority_wins() -> None:
    router = make(RouteSpec("specific", "/a/b"), RouteSpec("boss", "/", prefix=True, priority=10))
    assert target(router, "/a/b") == "boss"


def test_methods_and_405() -> None:
    router = make(
        RouteSpec("get", "/r", methods=frozenset({"GET"})),
        RouteSpec("post", "/r", methods=frozenset({"POST"})),
    )
    assert target(router, "/r", "POST") == "post"
    assert target(router, "/r", "DELETE") == frozenset({"GET", "POST"})
    assert target(router, "/nothing") == frozenset()


def test_method_mismatch_falls_through_to_a_broader_route() -> None:
    router = make(
        RouteSpec("me", "/users/me", methods=frozenset({"GET"})), RouteSpec("any", "/users/{id}")
    )
    assert target(router, "/users/me", "DELETE") == "any"


def test_header_conditions_rank_first() -> None:
    router = make(RouteSpec("plain", "/h"), RouteSpec("v2", "/h", headers={"X-Version": "2"}))
    assert target(router, "/h", headers={"X-Version": "2"}) == "v2"
    assert target(router, "/h", headers={"X-Version": "1"}) == "plain"


def test_pattern_errors() -> None:
    for bad in ("/a/{rest:path}/b", "/a/{x}-y", "/a/{1x}", "/a/{x}/{x}", "/a/{x:int}"):
        with pytest.raises(PatternError):
            Router([RouteSpec("t", bad)])


def test_path_normalisation() -> None:
    assert normalize_path("/a/./b/../c") == "/a/c"
    assert normalize_path("/a/%7Euser/%41") == "/a/~user/A"
    assert normalize_path("/a/%2Fb") == "/a/%2Fb"
    assert normalize_path("/a/%2e%2e/b") == "/b"
    assert normalize_path("/../etc") is None
    assert normalize_path("http://evil/x") is None
    assert normalize_path("/a/b/..") == "/a/"


def test_encoded_static_segments_match_their_decoded_form() -> None:
    router = make(RouteSpec("users", "/api/users"))
    assert target(router, normalize_path("/api/%75sers") or "") == "users"


def test_ten_thousand_routes_match_correctly() -> None:
    specs = [RouteSpec(f"r{i}", f"/svc{i % 100}/res{i}/{{id}}") for i in range(10_000)]
    router = Router(specs)
    rng = random.Random(7)
    for i in rng.sample(range(10_000), 500):
        found = router.match("GET", "", f"/svc{i % 100}/res{i}/abc", {})
        assert isinstance(found, RouteMatch)
        assert found.target == f"r{i}"
        assert found.params == {"id": "abc"}
    assert target(router, "/svc1/res2/x") == frozenset()
