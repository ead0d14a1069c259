"""The Redis backend end to end: shared limits, key expiry, NOSCRIPT, outages, slowness, cluster."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import Any

import aiohttp
import kairos_ratelimit
import pytest
import yaml
from redis.asyncio import Redis, RedisCluster

from kairos_core.testing import GatewayProcess
from kairos_core.testing.process import free_port

SLACK = 3.0
"""Redis timeout where a test is not about timeouts: a loaded CI box must not fail open."""


def limited_route(
    backend_url: str, redis: dict[str, Any], prefix: str = "/", **config: Any
) -> dict[str, Any]:
    settings = {"limits": [{"rate": "3/h"}], "backend": "redis", "redis": redis, **config}
    return {
        "prefix": prefix,
        "upstream": {"backends": [{"url": backend_url}]},
        "plugins": [{"name": "rate-limit", "config": settings}],
    }


async def statuses(http: aiohttp.ClientSession, url: str, count: int, **kwargs: Any) -> list[int]:
    out = []
    for _ in range(count):
        async with http.get(url, **kwargs) as response:
            await response.read()
            out.append(response.status)
    return out


async def test_limits_in_redis_with_expiring_keys(
    kairos_gateway, echo_backend, http, clean_redis: str, key_prefix: str
) -> None:
    redis = {"url": clean_redis, "key_prefix": key_prefix, "timeout": SLACK}
    gw = await kairos_gateway(
        {"routes": [{**limited_route(echo_backend.url, redis), "name": "api"}]},
        plugins=[kairos_ratelimit],
    )
    assert await statuses(http, gw.url + "/", 4) == [200, 200, 200, 429]
    async with http.get(gw.url + "/") as response:
        assert response.headers["X-RateLimit-Remaining"] == "0"
        assert 1 <= int(response.headers["Retry-After"]) <= 1200
    client = Redis.from_url(clean_redis, decode_responses=True)
    keys = [key async for key in client.scan_iter(match=key_prefix + "*")]
    assert len(keys) == 1
    assert re.fullmatch(
        re.escape(key_prefix) + r"\{rate-limit/route:api:3-per-1h:[0-9a-f]{8}:127\.0\.0\.1\}",
        keys[0],
    )
    assert 0 < await client.pttl(keys[0]) <= 3_601_000  # expires by itself
    await client.aclose()


async def test_routes_share_one_client(
    kairos_gateway, echo_backend, http, clean_redis: str, key_prefix: str
) -> None:
    redis = {"url": clean_redis, "key_prefix": key_prefix, "timeout": SLACK}
    gw = await kairos_gateway(
        {
            "routes": [
                limited_route(echo_backend.url, redis, "/a"),
                limited_route(echo_backend.url, redis, "/b"),
            ]
        },
        plugins=[kairos_ratelimit],
    )
    links = gw.gateway.runtime.services.shared["rate-limit"]
    assert len(links) == 1
    assert next(iter(links.values())).users == 2


def process_config(private_dir: Path, name: str, backend_url: str, redis: dict[str, Any]) -> Path:
    config = {
        "listeners": [{"host": "127.0.0.1", "port": 0}],
        "admin": {"enabled": False},
        "routes": [limited_route(backend_url, redis, limits=[{"rate": "5/h"}], key=["route"])],
    }
    path = private_dir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def test_two_gateway_processes_enforce_one_limit(
    private_dir: Path, echo_backend, clean_redis: str, key_prefix: str
) -> None:
    redis = {"url": clean_redis, "key_prefix": key_prefix, "timeout": SLACK}
    gateways = [
        GatewayProcess(["--config", str(process_config(private_dir, n, echo_backend.url, redis))])
        for n in ("one", "two")
    ]
    try:
        await asyncio.gather(*(g.start() for g in gateways))
        results = []
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            for _ in range(5):
                for gateway in gateways:
                    results += await statuses(http, gateway.url + "/", 1)
        assert results.count(200) == 5
        assert results[:5] == [200] * 5
        assert set(results[5:]) == {429}
    finally:
        await asyncio.gather(*(g.stop() for g in gateways))


async def test_scripts_are_reloaded_after_script_flush(
    kairos_gateway, echo_backend, http, own_redis
) -> None:
    gw = await kairos_gateway(
        {"routes": [limited_route(echo_backend.url, {"url": own_redis.url, "timeout": SLACK})]},
        plugins=[kairos_ratelimit],
    )
    assert await statuses(http, gw.url + "/", 1) == [200]
    client = Redis.from_url(own_redis.url)
    await client.script_flush()
    await client.aclose()
    assert await statuses(http, gw.url + "/", 3) == [200, 200, 429]


async def test_redis_outage_policy_and_recovery(
    kairos_gateway, echo_backend, http, own_redis, caplog: pytest.LogCaptureFixture
) -> None:
    redis = {"url": own_redis.url, "timeout": 1.0, "retry_interval": 0.2}
    gw = await kairos_gateway(
        {
            "routes": [
                limited_route(echo_backend.url, redis, "/open", on_error="allow"),
                limited_route(echo_backend.url, redis, "/closed", on_error="deny"),
            ]
        },
        plugins=[kairos_ratelimit],
    )
    assert await statuses(http, gw.url + "/closed", 1) == [200]
    caplog.set_level(logging.WARNING, logger="kairos.ratelimit")
    await own_redis.stop()
    assert await statuses(http, gw.url + "/open", 5) == [200] * 5  # fail open: beyond the limit
    async with http.get(gw.url + "/closed") as response:
        assert response.status == 503
        assert (await response.json())["type"] == "rate_limit_unavailable"
        assert response.headers["Retry-After"] == "1"
    assert any("on_error policy applies" in r.getMessage() for r in caplog.records)
    errors = gw.gateway.runtime.services.metrics.snapshot()["kairos_ratelimit_backend_errors"]
    assert sum(errors["values"].values()) >= 1

    await own_redis.start()  # same port, empty data
    for _ in range(100):
        if await statuses(http, gw.url + "/closed", 1) == [200]:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the gateway did not recover when Redis came back")
    assert await statuses(http, gw.url + "/closed", 3) == [200, 200, 429]
    assert any("answers again" in r.getMessage() for r in caplog.records)


async def test_slow_redis_applies_the_policy(kairos_gateway, echo_backend, http, own_redis) -> None:
    redis = {"url": own_redis.url, "timeout": 0.5, "retry_interval": 0.1}
    gw = await kairos_gateway(
        {
            "routes": [
                limited_route(echo_backend.url, redis, "/open", on_error="allow"),
                limited_route(echo_backend.url, redis, "/closed", on_error="deny"),
            ]
        },
        plugins=[kairos_ratelimit],
    )
    assert await statuses(http, gw.url + "/closed", 1) == [200]
    admin = Redis.from_url(own_redis.url)
    await admin.execute_command("CLIENT", "PAUSE", "5000", "WRITE")  # scripts wait too
    try:
        # Redis would answer after the pause; a 503 shows the short timeout applied instead
        assert await statuses(http, gw.url + "/closed", 1) == [503]
        assert await statuses(http, gw.url + "/open", 1) == [200]
    finally:
        await admin.execute_command("CLIENT", "UNPAUSE")
        await admin.aclose()


async def test_redis_cluster_end_to_end(kairos_gateway, echo_backend, http, redis_cluster) -> None:
    redis = {
        "url": redis_cluster[0].url.removesuffix("/0"),
        "cluster": True,
        "key_prefix": "c:",
        "timeout": SLACK,
    }
    config = {
        "limits": [
            {"rate": "2/h", "algorithm": "sliding_window_counter", "name": "swc"},
            {"rate": "9/h", "algorithm": "gcra", "name": "gcra"},
        ],
        "key": ["header:X-Client"],
    }
    gw = await kairos_gateway(
        {"routes": [limited_route(echo_backend.url, redis, **config)]},
        plugins=[kairos_ratelimit],
    )
    for n in range(12):
        headers = {"X-Client": f"client-{n}"}
        assert await statuses(http, gw.url + "/", 3, headers=headers) == [200, 200, 429]
    cluster = RedisCluster(host="127.0.0.1", port=redis_cluster[0].port)
    try:
        sizes = [
            await cluster.dbsize(target_nodes=cluster.get_node("127.0.0.1", node.port))
            for node in redis_cluster
        ]
        assert sum(sizes) == 12 * 3  # two sliding-window keys (one slot) and one GCRA key each
        assert sum(1 for size in sizes if size) >= 2  # spread over the cluster's nodes
    finally:
        await cluster.aclose()
    for node in redis_cluster:
        client = Redis.from_url(node.url)
        await client.script_flush()
        await client.aclose()
    for n in range(12, 16):  # after NOSCRIPT the scripts are loaded on every primary again
        headers = {"X-Client": f"client-{n}"}
        assert await statuses(http, gw.url + "/", 3, headers=headers) == [200, 200, 429]


async def test_tls_and_password(
    kairos_gateway,
    echo_backend,
    http,
    private_dir: Path,
    start_redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    ca_file, chain_file, key_file = (private_dir / n for n in ("ca.pem", "chain.pem", "key.pem"))
    ca.cert_pem.write_to_path(str(ca_file))
    cert.cert_chain_pems[0].write_to_path(str(chain_file))
    cert.private_key_pem.write_to_path(str(key_file))
    tls_port = free_port()
    await start_redis(
        "--tls-port", str(tls_port),
        "--tls-cert-file", str(chain_file),
        "--tls-key-file", str(key_file),
        "--tls-ca-cert-file", str(ca_file),
        "--tls-auth-clients", "no",
        "--requirepass", "s3cret",
        password="s3cret",
    )  # fmt: skip
    url = f"redis://127.0.0.1:{tls_port}/0"
    good = {
        "url": url,
        "tls": True,
        "tls_ca_file": str(ca_file),
        "password": "s3cret",
        "timeout": SLACK,
    }
    bad = {**good, "password": "wrong", "retry_interval": 0.1}
    gw = await kairos_gateway(
        {
            "routes": [
                limited_route(echo_backend.url, good, "/good"),
                limited_route(echo_backend.url, bad, "/bad", on_error="deny"),
            ]
        },
        plugins=[kairos_ratelimit],
    )
    assert await statuses(http, gw.url + "/good", 4) == [200, 200, 200, 429]
    caplog.set_level(logging.WARNING, logger="kairos.ratelimit")
    assert await statuses(http, gw.url + "/bad", 1) == [503]
    assert any("AuthenticationError" in r.getMessage() for r in caplog.records)
    assert "wrong" not in caplog.text  # the password is not logged
