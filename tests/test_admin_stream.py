"""Live metrics over the admin WebSocket: snapshot, updates, interval validation, filters."""

from __future__ import annotations

import asyncio
import base64

import aiohttp
import pytest

from kairos_core.testing import running_gateway


async def test_snapshot_then_updates(kairos_gateway, echo_backend, http) -> None:
    gw = await kairos_gateway(
        {
            "routes": [
                {"name": "a", "path": "/a", "upstream": {"backends": [{"url": echo_backend.url}]}},
                {"name": "b", "path": "/b", "upstream": {"backends": [{"url": echo_backend.url}]}},
            ]
        }
    )
    async with http.ws_connect(gw.admin_url + "/stream?interval=0.2&routes=a") as socket:
        snapshot = await socket.receive_json(timeout=5)
        assert snapshot["type"] == "snapshot"
        assert snapshot["health"]["status"] == "ok"
        assert snapshot["backends"][0]["up"] is True
        async with http.get(gw.url + "/b") as response:
            assert response.status == 200
        for _ in range(4):
            async with http.get(gw.url + "/a") as response:
                assert response.status == 200
        # Each update carries the requests since the one before: the four may be spread out.
        requests = 0.0
        async with asyncio.timeout(5):
            while requests < 4:
                update = await socket.receive_json()
                assert update["type"] == "update"
                assert set(update["routes"]) <= {"a"}  # filtered
                counted = update["rates"]["routes"].get("a", {"requests": 0.0})
                if counted["requests"]:
                    requests += counted["requests"]
                    assert update["rates"]["total"]["rps"] > 0
                    assert counted["p50"] is not None
        assert requests == 4
        assert set(update["routes"]) == {"a"}


async def test_interval_is_validated(kairos_gateway, echo_backend, http) -> None:
    gw = await kairos_gateway(
        {"routes": [{"prefix": "/", "upstream": {"backends": [{"url": echo_backend.url}]}}]}
    )
    for bad in ("0", "-1", "abc", "600"):
        async with http.get(gw.admin_url + f"/stream?interval={bad}") as response:
            assert response.status == 400, bad
            assert (await response.json())["type"] == "invalid_interval"


async def test_stream_needs_the_token(kairos_gateway, echo_backend, http) -> None:
    gw = await kairos_gateway(
        {
            "admin": {"token": "tok-123456", "port": 0},
            "routes": [{"prefix": "/", "upstream": {"backends": [{"url": echo_backend.url}]}}],
        }
    )
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        async with http.ws_connect(gw.admin_url + "/stream"):
            pass
    assert info.value.status == 401
    async with http.ws_connect(
        gw.admin_url + "/stream", headers={"Authorization": "Bearer tok-123456"}
    ) as socket:
        assert (await socket.receive_json(timeout=5))["type"] == "snapshot"


def bearer_protocol(token: str) -> str:
    """The `bearer.<base64url>` subprotocol a browser offers instead of a header."""
    return "bearer." + base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


async def test_stream_takes_the_token_as_a_subprotocol(kairos_gateway, echo_backend, http) -> None:
    token = "tok-é/+=?123"  # not a valid subprotocol as is: sent base64url-encoded
    gw = await kairos_gateway(
        {
            "admin": {"token": token, "port": 0},
            "routes": [{"prefix": "/", "upstream": {"backends": [{"url": echo_backend.url}]}}],
        }
    )
    url = gw.admin_url + "/stream?interval=0.2"
    async with http.ws_connect(url, protocols=("kairos.stream", bearer_protocol(token))) as socket:
        assert socket.protocol == "kairos.stream"  # the token is never echoed back
        assert (await socket.receive_json(timeout=5))["type"] == "snapshot"
    for offered in (bearer_protocol("wrong"), "bearer.%%%", "bearer."):
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            async with http.ws_connect(url, protocols=("kairos.stream", offered)):
                pass
        assert info.value.status == 401, offered


async def test_subprotocol_token_is_only_for_the_stream(kairos_gateway, echo_backend, http) -> None:
    gw = await kairos_gateway(
        {
            "admin": {"token": "tok-123456", "port": 0},
            "routes": [{"prefix": "/", "upstream": {"backends": [{"url": echo_backend.url}]}}],
        }
    )
    headers = {"Sec-WebSocket-Protocol": f"kairos.stream, {bearer_protocol('tok-123456')}"}
    for path in ("/config", "/routes", "/metrics"):
        async with http.get(gw.admin_url + path, headers=headers) as response:
            assert response.status == 401, path


async def test_counters_by_label_and_upstream_latency(kairos_gateway, echo_backend, http) -> None:
    gw = await kairos_gateway(
        {
            "routes": [
                {"name": "a", "path": "/a", "upstream": {"backends": [{"url": echo_backend.url}]}}
            ]
        }
    )
    for status in (200, 200, 200, 404):
        async with http.get(gw.url + "/a", headers={"X-Echo-Status": str(status)}) as response:
            assert response.status == status
    async with http.ws_connect(gw.admin_url + "/stream?interval=0.2") as socket:
        snapshot = await socket.receive_json(timeout=5)  # rates over everything so far
    requests = snapshot["counter_labels"]["kairos_requests"]
    assert requests["status_class"] == {"2xx": 3, "4xx": 1}
    assert "route" not in requests  # per-route figures are under `routes`
    assert requests["method"] == {"GET": 4}
    assert snapshot["counters"]["kairos_requests"] == 4
    assert sum(snapshot["routes"]["a"]["upstream_latency_buckets"]) == 4
    upstream = snapshot["rates"]["routes"]["a"]["upstream"]
    assert 0 < upstream["p50"] <= upstream["p95"] <= upstream["p99"]
    assert snapshot["rates"]["total"]["upstream"] == upstream
    uptime = snapshot["health"]["uptime_seconds"]  # snapshot rates span the whole uptime
    assert snapshot["rates"]["total"]["rps"] == pytest.approx(4 / uptime, rel=0.5)


async def test_shutdown_closes_open_streams(echo_backend, http) -> None:
    config = {"routes": [{"prefix": "/", "upstream": {"backends": [{"url": echo_backend.url}]}}]}
    async with asyncio.timeout(15):  # not a speed check: without the goodbye this hangs 60 s
        async with running_gateway(config) as gw:
            socket = await http.ws_connect(gw.admin_url + "/stream?interval=5")
            assert (await socket.receive_json(timeout=5))["type"] == "snapshot"
        closing = await socket.receive(timeout=5)
    assert closing.type == aiohttp.WSMsgType.CLOSE
    assert closing.data == aiohttp.WSCloseCode.GOING_AWAY
    await socket.close()


async def test_latency_per_backend(kairos_gateway, backend_factory, http) -> None:
    first, second = await backend_factory(), await backend_factory()
    backends = [{"url": first.url, "name": "one"}, {"url": second.url, "name": "two"}]
    gw = await kairos_gateway(
        {"routes": [{"name": "a", "prefix": "/", "upstream": {"backends": backends}}]}
    )
    for _ in range(6):  # round robin: three each
        async with http.get(gw.url + "/") as response:
            assert response.status == 200
    async with http.ws_connect(gw.admin_url + "/stream?interval=0.2") as socket:
        snapshot = await socket.receive_json(timeout=5)
    buckets = {b["backend"]: sum(b["latency_buckets"]) for b in snapshot["backends"]}
    assert buckets == {"one": 3, "two": 3}
    assert len(snapshot["backend_latency_bounds"]) > 5
    async with http.get(gw.admin_url + "/metrics") as response:
        text = await response.text()
    assert 'kairos_backend_duration_seconds_count{backend="one",upstream="route:a"} 3.0' in text
