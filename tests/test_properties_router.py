"""Router properties: the trie router answers exactly as a naive scan of every route would."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import example, given
from hypothesis import strategies as st
from multidict import CIMultiDict

from kairos_core.router import RouteMatch, Router, RouteSpec, normalize_path, split_path
from kairos_core.testing.properties import bounded

BOUNDED = bounded(150)

# Static pattern segments as written and as the router compares them (unreserved escapes decoded).
STATIC = {"a": "a", "b": "b", "A": "A", "%41": "A", "%7e": "~", "": "", "%2F": "%2F"}
PARAM, CATCH_ALL = "{param}", "{rest:path}"
REQUEST_SEGMENTS = ["a", "b", "A", "%41", "~", "%7E", "%2f", "", ".", "..", "c"]
HOSTS = ["a.com", "b.a.com", "c.b.a.com", "x.com", "com", "", "A.com"]
ROUTE_HOSTS = ["a.com", "b.a.com", "*.a.com", "*.b.a.com", "*.com", "x.com"]
METHODS = ["GET", "POST", "PUT"]


@dataclass(frozen=True)
class Route:
    """A generated route: pattern tokens plus match conditions."""

    tokens: tuple[str, ...]
    prefix: bool
    methods: frozenset[str] | None
    hosts: tuple[str, ...]
    header: str | None
    priority: int

    @property
    def path(self) -> str:
        """The pattern as written in a config, parameters numbered to keep names unique."""
        out, count = [], 0
        for token in self.tokens:
            if token in (PARAM, CATCH_ALL):
                name = f"p{count}"
                count += 1
                out.append(f"{{{name}}}" if token == PARAM else f"{{{name}:path}}")
            else:
                out.append(token)
        return "/" + "/".join(out)

    def spec(self, index: int) -> RouteSpec[int]:
        """The RouteSpec handed to the router; the target is the route's index."""
        headers = {"X-Version": self.header} if self.header is not None else {}
        return RouteSpec(
            index, self.path, self.prefix, self.methods, self.hosts, headers, self.priority
        )


@st.composite
def routes(draw: st.DrawFn) -> Route:
    """A random route; prefix routes never end in a catch-all (the config refuses it)."""
    prefix = draw(st.booleans())
    # A small alphabet, so that routes often share trie nodes and precedence decides.
    token = st.sampled_from(["a", "a", "%41", "", PARAM, PARAM]) | st.sampled_from([*STATIC])
    tokens = draw(st.lists(token, max_size=3))
    if not prefix and draw(st.booleans()):
        tokens.append(CATCH_ALL)
    methods = draw(st.none() | st.frozensets(st.sampled_from(METHODS), min_size=1))
    hosts = draw(st.lists(st.sampled_from(ROUTE_HOSTS), max_size=2, unique=True))
    header = draw(st.none() | st.sampled_from(["1", "2"]))
    priority = draw(st.sampled_from([0, 0, 1]))
    return Route(tuple(tokens), prefix, methods, tuple(hosts), header, priority)


def host_rank(route: Route, host: str) -> int | None:
    """Exact host 0, then wildcards longest suffix first, then host-less routes; None: no match."""
    if not route.hosts:
        return 1000
    ranks = []
    for pattern in route.hosts:
        if pattern.startswith("*."):
            suffix = pattern[2:]
            if host.endswith("." + suffix):
                ranks.append(100 - (suffix.count(".") + 1))
        elif pattern == host:
            ranks.append(0)
    return min(ranks, default=None)


def path_match(route: Route, segs: list[str]) -> tuple[tuple[int, ...], dict[str, str]] | None:
    """The route's depth-first rank for these segments and its params, or None.

    At each depth: static child 0 < param child 1 < catch-all here 2 < prefix here 3; at the
    end of the path: exact 2 < prefix 3 (no child can follow there).
    """
    tokens = list(route.tokens) or [""]  # "/" is one empty segment
    if route.prefix:
        while tokens and tokens[-1] == "":
            tokens.pop()  # the router drops a prefix's trailing slashes
    catch_all = bool(tokens) and tokens[-1] == CATCH_ALL
    fixed = tokens[:-1] if catch_all else tokens
    if len(fixed) > len(segs):
        return None
    rank: list[int] = []
    params: dict[str, str] = {}
    count = 0
    for token, seg in zip(fixed, segs, strict=False):
        if token == PARAM:
            if not seg:
                return None
            params[f"p{count}"] = seg
            count += 1
            rank.append(1)
        elif STATIC[token] == seg:
            rank.append(0)
        else:
            return None
    depth = len(fixed)
    if catch_all:
        if depth == len(segs):
            return None
        params[f"p{count}"] = "/".join(segs[depth:])
        return (*rank, 2), params
    if route.prefix:
        return (*rank, 3), params
    return ((*rank, 2), params) if depth == len(segs) else None


def reference(
    table: list[Route], method: str, host: str, path: str, header: str | None
) -> tuple[int, dict[str, str]] | frozenset[str]:
    """The naive answer: rank every matching route, take the best; else the 405 method set."""
    segs = split_path(path)
    best: tuple[tuple[object, ...], int, dict[str, str]] | None = None
    allowed: set[str] = set()
    for index, route in enumerate(table):
        rank = host_rank(route, host)
        found = path_match(route, segs)
        if rank is None or found is None:
            continue
        if route.header is not None and route.header != header:
            continue
        if route.methods is not None and method not in route.methods:
            allowed |= route.methods
            continue
        key = (-route.priority, rank, found[0], route.header is None, index)
        if best is None or key < best[0]:
            best = (key, index, found[1])
    if best is None:
        return frozenset(allowed)
    return best[1], best[2]


@BOUNDED
@given(
    st.lists(routes(), max_size=8),
    st.lists(
        st.tuples(
            st.sampled_from(METHODS),
            st.sampled_from(HOSTS),
            st.lists(st.sampled_from(REQUEST_SEGMENTS), min_size=1, max_size=4),
            st.none() | st.sampled_from(["1", "2"]),
        ),
        min_size=1,
        max_size=6,
    ),
)
@example(
    [Route((), False, None, (), None, 0), Route((), True, None, (), None, 0)],
    [("GET", "a.com", [""], None)],
)  # exact "/" beats prefix "/"
def test_router_agrees_with_a_naive_scan(
    table: list[Route], requests: list[tuple[str, str, list[str], str | None]]
) -> None:
    router = Router(route.spec(i) for i, route in enumerate(table))
    for method, host, segments, header in requests:
        path = normalize_path("/" + "/".join(segments))
        if path is None:
            continue  # the handler answers 400 before routing
        headers = CIMultiDict({"X-Version": header} if header is not None else {})
        for _ in range(2):  # the second lookup may come from the memo
            found = router.match(method, host, path, headers)
            expected = reference(table, method, host, path, header)
            if isinstance(expected, frozenset):
                assert found == expected, (method, host, path)
            else:
                assert isinstance(found, RouteMatch), (method, host, path, found)
                assert (found.target, found.params) == expected, (method, host, path)
                route = table[found.target]
                assert found.matched_prefix == (route.path.rstrip("/") if route.prefix else "")


@BOUNDED
@given(st.lists(routes(), max_size=5), st.text(max_size=40), st.text(max_size=20), st.text())
def test_arbitrary_paths_and_hosts_never_raise(
    table: list[Route], raw_path: str, host: str, method: str
) -> None:
    router = Router(route.spec(i) for i, route in enumerate(table))
    for path in ("/" + raw_path, normalize_path("/" + raw_path), raw_path):
        if path is not None:
            found = router.match(method, host, path, CIMultiDict())
            assert isinstance(found, RouteMatch | frozenset)
