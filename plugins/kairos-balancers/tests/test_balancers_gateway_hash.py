"""Consistent hashing end to end: header, cookie, client IP and path keys stick through a gateway."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import aiohttp
import pytest

from kairos_core.testing import echo_app


def hash_config(backends, config: dict[str, Any]) -> dict[str, Any]:
    """A named upstream `users` with the consistent_hash balancer and one route `/` to it."""
    return {
        "upstreams": {
            "users": {
                "balancer": {"name": "consistent_hash", "config": config},
                "backends": [{"url": b.url, "name": name} for b, name in backends],
            }
        },
        "routes": [{"prefix": "/", "upstream": "users"}],
    }


async def start_echoes(backend_factory, *names: str):
    return [(await backend_factory(echo_app(name)), name) for name in names]


async def served_by(http, url: str, **kwargs: Any) -> str:
    async with http.get(url, **kwargs) as response:
        assert response.status == 200
        await response.read()
        return response.headers["X-Backend"]


async def owners(http, url: str, users: list[str]) -> dict[str, str]:
    return {u: await served_by(http, url, headers={"X-User": u}) for u in users}


@pytest.mark.parametrize("algorithm", ["ring", "maglev"])
async def test_header_key_sticks_and_only_the_departed_backends_users_move(
    kairos_gateway, backend_factory, http, algorithm
) -> None:
    backends = await start_echoes(backend_factory, "a", "b", "c")
    gw = await kairos_gateway(
        hash_config(backends, {"key": "header", "header": "X-User", "algorithm": algorithm})
    )
    users = [f"user-{n}" for n in range(60)]
    before = await owners(http, gw.url + "/", users)
    assert await owners(http, gw.url + "/", users) == before
    assert set(before.values()) == {"a", "b", "c"}

    pool = gw.gateway.runtime.pools["users"]
    pool.backends[1].set_healthy(False)
    during = await owners(http, gw.url + "/", users)
    assert "b" not in during.values()
    stayed = {u for u in users if before[u] != "b"}
    if algorithm == "ring":
        assert all(during[u] == before[u] for u in stayed)
    else:
        assert sum(during[u] != before[u] for u in stayed) <= len(users) // 10

    pool.backends[1].set_healthy(True)
    assert await owners(http, gw.url + "/", users) == before


async def test_cookie_key_sticks(kairos_gateway, backend_factory, http) -> None:
    backends = await start_echoes(backend_factory, "a", "b", "c")
    gw = await kairos_gateway(hash_config(backends, {"key": "cookie", "cookie": "session"}))
    seen: dict[str, set[str]] = {}
    for round_ in range(3):
        for n in range(30):
            cookie = f"theme=dark; session=s{n}; round={round_}"
            backend = await served_by(http, gw.url + "/", headers={"Cookie": cookie})
            seen.setdefault(f"s{n}", set()).add(backend)
    assert all(len(backends_) == 1 for backends_ in seen.values())
    assert len(set().union(*seen.values())) == 3


async def test_client_ip_key_sticks_per_source_address(kairos_gateway, backend_factory) -> None:
    backends = await start_echoes(backend_factory, "a", "b", "c")
    gw = await kairos_gateway(hash_config(backends, {}))
    by_address: dict[str, Counter[str]] = {}
    for n in range(2, 26):
        address = f"127.0.0.{n}"
        connector = aiohttp.TCPConnector(local_addr=(address, 0), force_close=True)
        async with aiohttp.ClientSession(connector=connector) as client:
            by_address[address] = Counter(
                [await served_by(client, gw.url + f"/p{i}") for i in range(3)]
            )
    assert all(len(counts) == 1 for counts in by_address.values())
    assert len({next(iter(c)) for c in by_address.values()}) >= 2


async def test_path_key_sticks_and_ignores_query(kairos_gateway, backend_factory, http) -> None:
    backends = await start_echoes(backend_factory, "a", "b", "c")
    gw = await kairos_gateway(hash_config(backends, {"key": "path", "fallback": "round_robin"}))
    paths = [f"/items/{n}" for n in range(30)]
    first = {p: await served_by(http, gw.url + p) for p in paths}
    again = {p: await served_by(http, gw.url + p + "?page=2") for p in paths}
    assert again == first
    assert len(set(first.values())) == 3


async def test_missing_header_falls_back_to_rotation(kairos_gateway, backend_factory, http) -> None:
    backends = await start_echoes(backend_factory, "a", "b", "c")
    gw = await kairos_gateway(
        hash_config(backends, {"key": "header", "header": "X-User", "fallback": "round_robin"})
    )
    assert Counter([await served_by(http, gw.url + "/") for _ in range(9)]) == {
        "a": 3,
        "b": 3,
        "c": 3,
    }


async def test_non_utf8_key_bytes_are_hashed_not_fatal(kairos_gateway, backend_factory) -> None:
    backends = await start_echoes(backend_factory, "a", "b", "c")
    gw = await kairos_gateway(hash_config(backends, {"key": "header", "header": "X-User"}))
    host, port = gw.url.removeprefix("http://").rsplit(":", 1)
    answers = []
    for _ in range(2):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            b"GET / HTTP/1.1\r\nHost: x\r\nX-User: caf\xe9\xff\r\nConnection: close\r\n\r\n"
        )
        await writer.drain()
        answer = await reader.read()
        writer.close()
        await writer.wait_closed()
        head = answer.split(b"\r\n\r\n", 1)[0]
        assert head.startswith(b"HTTP/1.1 200"), head
        answers.append([line for line in head.split(b"\r\n") if line.startswith(b"X-Backend")])
    assert answers[0] == answers[1] != []


async def test_bad_balancer_config_names_the_field(kairos_gateway, backend_factory) -> None:
    backends = await start_echoes(backend_factory, "a")
    with pytest.raises(Exception, match=r"upstreams\.users\.balancer\.config.*needs `header:`"):
        await kairos_gateway(hash_config(backends, {"key": "header"}))
    with pytest.raises(Exception, match=r"upstreams\.users\.balancer\.config\.algorithm"):
        await kairos_gateway(hash_config(backends, {"algorithm": "rendezvous"}))
