"""Consistent hashing at unit level: stickiness, ~1/N remapping, spread, keys and config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import pytest
from kairos_balancers import ConsistentHash, ConsistentHashConfig
from kairos_balancers.hash_keys import cookie_value
from pydantic import ValidationError

KEYS = [f"user-{n}" for n in range(20_000)]
ALGORITHMS = [{"algorithm": "ring"}, {"algorithm": "maglev"}]


def balancer_for(backends, **config):
    settings = ConsistentHashConfig(**{"key": "header", "header": "X-User", **config})
    return ConsistentHash(settings, backends)


def mapping(balancer, candidates, make_request, keys=KEYS):
    return {k: balancer.pick(make_request(headers={"X-User": k}), candidates).name for k in keys}


@pytest.mark.parametrize("config", ALGORITHMS)
def test_same_key_same_backend(make_backends, make_request, config) -> None:
    backends = make_backends("a", "b", "c")
    balancer = balancer_for(backends, **config)
    first = mapping(balancer, backends, make_request, KEYS[:500])
    assert mapping(balancer, backends, make_request, KEYS[:500]) == first
    assert mapping(balancer_for(backends, **config), backends, make_request, KEYS[:500]) == first


@pytest.mark.parametrize("config", ALGORITHMS)
@pytest.mark.parametrize("count", [3, 5, 10])
def test_spread_is_even(make_backends, make_request, config, count) -> None:
    backends = make_backends(*(f"b{i}" for i in range(count)))
    shares = Counter(mapping(balancer_for(backends, **config), backends, make_request).values())
    fair = len(KEYS) / count
    tolerance = 0.25 if config["algorithm"] == "ring" else 0.06
    assert len(shares) == count
    assert all(abs(n - fair) / fair < tolerance for n in shares.values()), shares


@pytest.mark.parametrize("count", [3, 5, 10])
def test_ring_moves_only_the_departed_backends_keys(make_backends, make_request, count) -> None:
    backends = make_backends(*(f"b{i}" for i in range(count)))
    balancer = balancer_for(backends)
    before = mapping(balancer, backends, make_request)
    gone = backends[1]
    after = mapping(balancer, tuple(b for b in backends if b is not gone), make_request)
    moved = [k for k in KEYS if before[k] != after[k]]
    assert all(before[k] == gone.name for k in moved)
    assert len(moved) == sum(1 for v in before.values() if v == gone.name)
    assert abs(len(moved) / len(KEYS) - 1 / count) < 0.25 / count
    assert mapping(balancer, backends, make_request) == before


@pytest.mark.parametrize("count", [3, 5, 10])
def test_maglev_moves_about_one_nth(make_backends, make_request, count) -> None:
    backends = make_backends(*(f"b{i}" for i in range(count)))
    balancer = balancer_for(backends, algorithm="maglev")
    before = mapping(balancer, backends, make_request)
    gone = backends[-1]
    after = mapping(balancer, backends[:-1], make_request)
    moved = sum(1 for k in KEYS if before[k] != after[k])
    assert all(after[k] != gone.name for k in KEYS)
    assert moved / len(KEYS) < 1.5 / count


@pytest.mark.parametrize("config", ALGORITHMS)
def test_weight_doubles_the_share(make_backends, make_request, config) -> None:
    backends = make_backends("a", "b", "c", weights=[2, 1, 1])
    shares = Counter(mapping(balancer_for(backends, **config), backends, make_request).values())
    assert 0.42 < shares["a"] / len(KEYS) < 0.58


def test_duplicate_names_still_get_their_own_places(make_backends, make_request) -> None:
    backends = make_backends("same", "same", "other")
    balancer = balancer_for(backends)
    picked = Counter(
        id(balancer.pick(make_request(headers={"X-User": k}), backends)) for k in KEYS[:3000]
    )
    assert len(picked) == 3


def test_mapping_is_identical_in_another_process(make_backends, make_request) -> None:
    backends = make_backends("a", "b", "c")
    expected = {
        algorithm: mapping(
            balancer_for(backends, algorithm=algorithm), backends, make_request, KEYS[:300]
        )
        for algorithm in ("ring", "maglev")
    }
    script = """
import json, sys
from types import SimpleNamespace
from multidict import CIMultiDict
from kairos_core import Backend
from kairos_core.config import validate_config
from kairos_balancers import ConsistentHash, ConsistentHashConfig
pool = {"backends": [{"url": f"http://127.0.0.1:{20000 + i}", "name": n} for i, n in enumerate("abc")]}
upstream = validate_config({"upstreams": {"test": pool}}).config.upstreams["test"]
backends = tuple(Backend("test", config, upstream) for config in upstream.backends)
out = {}
for algorithm in ("ring", "maglev"):
    b = ConsistentHash(ConsistentHashConfig(key="header", header="X-User", algorithm=algorithm), backends)
    out[algorithm] = {
        f"user-{n}": b.pick(SimpleNamespace(headers=CIMultiDict({"X-User": f"user-{n}"}), client_ip="x"), backends).name
        for n in range(300)
    }
print(json.dumps(out))
"""
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    assert json.loads(result.stdout) == expected


def test_key_sources(make_backends, make_request) -> None:
    backends = make_backends(*(f"b{i}" for i in range(8)))

    def owner(config, **request):
        return ConsistentHash(ConsistentHashConfig(**config), backends).pick(
            make_request(**request), backends
        )

    by_ip = {owner({}, client_ip=f"10.0.0.{n}").name for n in range(64)}
    assert len(by_ip) > 4
    assert owner({}, client_ip="10.0.0.9") is owner({}, client_ip="10.0.0.9", path="/other")
    cookie = {"key": "cookie", "cookie": "session"}
    assert owner(cookie, headers={"Cookie": "a=1; session=abc"}) is owner(
        cookie, headers={"Cookie": 'session="abc"'}, client_ip="10.9.9.9"
    )
    path = {"key": "path"}
    assert owner(path, path="/x", query="a=1") is owner(path, path="/x", query="b=2")
    with_query = {"key": "path", "include_query": True}
    spread = {owner(with_query, path="/x", query=f"page={n}").name for n in range(64)}
    assert len(spread) > 4


def test_missing_key_falls_back_to_client_ip_or_rotation(make_backends, make_request) -> None:
    backends = make_backends("a", "b", "c")
    by_ip = balancer_for(backends)
    first = by_ip.pick(make_request(client_ip="10.1.2.3"), backends)
    assert all(by_ip.pick(make_request(client_ip="10.1.2.3"), backends) is first for _ in range(9))
    assert by_ip.pick(make_request(client_ip="10.1.2.3", headers={"X-User": ""}), backends) is first
    rotating = balancer_for(backends, fallback="round_robin")
    seen = [rotating.pick(make_request(), backends).name for _ in range(6)]
    assert seen == ["a", "b", "c", "a", "b", "c"]
    assert [by_ip.pick(None, backends).name for _ in range(3)] == ["a", "b", "c"]


def test_cookie_parsing() -> None:
    assert cookie_value(["a=1; b=2", "c=3"], "c") == "3"
    assert cookie_value(["a=1;b= two "], "b") == "two"
    assert cookie_value(["ab=1"], "a") is None
    assert cookie_value(["broken; a=x=y"], "a") == "x=y"
    assert cookie_value(["xsession=1; session=2"], "session") == "2"
    assert cookie_value(["session=; other=1"], "session") == ""


def test_table_is_built_once_per_candidate_set(make_backends, make_request) -> None:
    a, _b, c = backends = make_backends("a", "b", "c")
    balancer = balancer_for(backends)
    balancer.warm(backends)
    request = make_request(headers={"X-User": "u"})
    for _ in range(50):
        balancer.pick(request, backends)
        balancer.pick(request, (a, c))
    assert len(balancer._tables) == 2


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"key": "header"}, "needs `header:`"),
        ({"key": "cookie"}, "needs `cookie:`"),
        ({"key": "path", "header": "X"}, "only with `key: header`"),
        ({"key": "client_ip", "include_query": True}, "only with `key: path`"),
        ({"algorithm": "maglev", "table_size": 65536}, "must be a prime"),
        ({"key": "query"}, "client_ip"),
        ({"virtual_nodes": 0}, "greater than or equal to 1"),
        ({"hash": "md5"}, "Extra inputs"),
    ],
)
def test_config_errors_are_clear(config, message) -> None:
    with pytest.raises(ValidationError, match=message):
        ConsistentHashConfig(**config)


def test_ring_size_is_bounded(make_backends) -> None:
    backends = make_backends("a", "b", weights=[10_000, 10_000])
    with pytest.raises(ValueError, match="virtual_nodes"):
        ConsistentHash(ConsistentHashConfig(virtual_nodes=1000), backends)
