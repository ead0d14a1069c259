"""The client SDK (`kairos_core.client`) against real gateways: every method, errors, workers."""

from __future__ import annotations

import asyncio
import gc
import threading
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from kairos_core.client import (
    AdminClient,
    AdminError,
    AsyncAdminClient,
    Health,
    NotFound,
    ReloadFailed,
    RouteInfo,
    Unauthorized,
    Unreachable,
)
from kairos_core.plugins import installed_plugins
from kairos_core.testing import GatewayProcess
from kairos_core.testing.process import free_port

TOKEN = "sdk-admin-token-1"


def gateway_config(echo_url: str, **admin: Any) -> dict[str, Any]:
    return {
        "admin": {"port": 0, "token": TOKEN, **admin},
        "upstreams": {"svc": {"backends": [{"url": echo_url, "name": "echo-1"}]}},
        "routes": [
            {
                "name": "users",
                "path": "/users/{id}",
                "methods": ["GET"],
                "upstream": "svc",
                "plugins": [{"name": "headers", "config": {"request": {"set": {"X-A": "1"}}}}],
            },
            {"name": "files", "prefix": "/files", "upstream": "svc"},
        ],
    }


async def traffic(http: aiohttp.ClientSession, url: str) -> None:
    """Three good requests and one 5xx on `users`, one request no route matches."""
    for _ in range(3):
        async with http.get(url + "/users/7") as response:
            assert response.status == 200
    async with http.get(url + "/users/8", headers={"X-Echo-Status": "502"}) as response:
        assert response.status == 502
    async with http.get(url + "/nowhere") as response:
        assert response.status == 404


async def test_every_method_of_the_async_client(kairos_gateway, echo_backend, http) -> None:
    gw = await kairos_gateway(gateway_config(echo_backend.url))
    await traffic(http, gw.url)
    async with AsyncAdminClient(gw.admin_url, token=TOKEN, timeout=5) as admin:
        health = await admin.health()
        assert isinstance(health, Health)
        assert (health.status, health.routes, health.workers) == ("ok", 2, 1)
        readiness = await admin.ready()
        assert readiness.ready and readiness.checks == {"config": True, "listeners": True}
        assert (await admin.live())["status"] == "ok"

        text = await admin.metrics_text()
        assert "# TYPE kairos_requests_total counter" in text
        families = await admin.metrics()
        assert families["kairos_requests"].type == "counter"
        assert families["kairos_request_duration_seconds"].type == "histogram"
        summary = await admin.metrics_summary()
        users = next(r for r in summary.routes if r.route == "users")
        assert (users.requests, users.errors, users.error_rate) == (4, 1, 0.25)
        assert users.p50 is not None and 0 < users.p50 <= users.p95 <= users.p99  # type: ignore[operator]
        assert summary.routes[-1].route == "(none)"
        assert summary.routes[-1].client_errors == 1
        assert [(b.upstream, b.backend, b.up) for b in summary.backends] == [
            ("svc", "echo-1", True)
        ]
        assert summary.backends_up == 1 and summary.backends_down == 0

        routes = await admin.routes()
        assert all(isinstance(route, RouteInfo) for route in routes)
        assert [(r.name, r.path, r.prefix) for r in routes] == [
            ("users", "/users/{id}", None),
            ("files", None, "/files"),
        ]
        assert [link.name for link in routes[0].chain] == ["headers", "proxy"]
        (pool,) = await admin.upstreams()
        assert (pool.name, pool.backends[0].url, pool.backends[0].state) == (
            "svc",
            echo_backend.url,
            "up",
        )
        config = await admin.config()
        assert config["admin"]["token"] != TOKEN
        assert TOKEN not in repr(config)
        plugins = {plugin.name: plugin for plugin in await admin.plugins()}
        assert plugins["headers"].enabled and plugins["headers"].distribution == "kairos-headers"
        assert "/routes" in (await admin.openapi())["paths"]
        assert [r["name"] for r in await admin.request("get", "/routes")] == ["users", "files"]

        good = f"routes: [{{path: /x, upstream: {{backends: [{{url: '{echo_backend.url}'}}]}}}}]"
        assert (await admin.validate(good)).valid
        bad = "routes:\n  - path: /x\n    upstream: {backends: [{url: 'http://h:1'}]}\n    plugins: [{name: headers, config: {nope: 1}}]\n"
        verdict = await admin.validate(bad)
        assert not verdict.valid
        assert [(p.loc, p.line) for p in verdict.problems] == [
            ("routes[0].plugins[0].config.nope", 4)
        ]


async def test_stream_sends_a_snapshot_then_updates(kairos_gateway, echo_backend, http) -> None:
    gw = await kairos_gateway(gateway_config(echo_backend.url))
    await traffic(http, gw.url)
    async with AsyncAdminClient(gw.admin_url, token=TOKEN) as admin:
        messages = []
        async for message in admin.stream(interval=0.2, routes=["users"]):
            messages.append(message)
            if len(messages) == 2:
                break
        assert [m["type"] for m in messages] == ["snapshot", "update"]
        assert set(messages[0]["routes"]) == {"users"}  # the filter applies
        assert messages[0]["routes"]["users"]["requests"] == 4
        with pytest.raises(AdminError) as refused:
            async for _ in admin.stream(interval=0):
                pass
        assert (refused.value.status, refused.value.type) == (400, "invalid_interval")
        assert "between 0.1 and 60" in refused.value.message
    async with AsyncAdminClient(gw.admin_url, token="wrong") as admin:
        with pytest.raises(Unauthorized):
            async for _ in admin.stream():
                pass


async def test_errors_carry_the_servers_status_type_and_message(
    kairos_gateway, echo_backend, backend_factory
) -> None:
    gw = await kairos_gateway(gateway_config(echo_backend.url))
    async with AsyncAdminClient(gw.admin_url, token="wrong-token") as admin:
        with pytest.raises(Unauthorized) as denied:
            await admin.routes()
        assert (denied.value.status, denied.value.type) == (401, "unauthorized")
        assert denied.value.url == gw.admin_url + "/routes"
        assert (await admin.health()).status == "ok"  # probes need no token
    async with AsyncAdminClient(gw.admin_url) as admin:
        with pytest.raises(Unauthorized, match="admin token required"):
            await admin.config()
    async with AsyncAdminClient(gw.admin_url, token=TOKEN) as admin:
        with pytest.raises(ReloadFailed) as refused:
            await admin.reload()  # started from a dict: there is no file to reload
        assert refused.value.status == 422
        assert "not started from a config file" in refused.value.message
        assert refused.value.body["ok"] is False
        with pytest.raises(AdminError) as empty:
            await admin.validate(" \n")
        assert (empty.value.status, empty.value.type) == (400, "empty_body")
        with pytest.raises(NotFound):
            await admin.request("POST", "/no/such/endpoint", {"x": 1})

    closed = f"http://127.0.0.1:{free_port()}"
    async with AsyncAdminClient(closed) as admin:
        with pytest.raises(Unreachable) as unreachable:
            await admin.health()
    assert str(unreachable.value) == (
        f"cannot reach the Kairos admin API at {closed}: connection refused"
    )

    release = asyncio.Event()

    async def stuck(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/health", stuck)
    slow = await backend_factory(app)
    async with AsyncAdminClient(slow.url, timeout=0.3) as admin:
        with pytest.raises(Unreachable, match=r"no answer within 0\.3s"):
            await admin.health()
    release.set()


async def test_sync_client_outside_an_event_loop(kairos_gateway, echo_backend, http) -> None:
    gw = await kairos_gateway(gateway_config(echo_backend.url))
    await traffic(http, gw.url)

    def blocking_calls() -> tuple[str, list[str], float, bool]:
        with AdminClient(gw.admin_url, token=TOKEN) as admin:
            summary = admin.metrics_summary()
            users = next(r for r in summary.routes if r.route == "users")
            return (
                admin.health().status,
                [route.name for route in admin.routes()],
                users.requests,
                admin.validate("routes: []").valid,
            )

    # this thread has no event loop; the gateway keeps serving on the test's loop meanwhile
    assert await asyncio.to_thread(blocking_calls) == ("ok", ["users", "files"], 4, True)

    def forgotten_client() -> None:
        AdminClient(gw.admin_url).live()  # never closed: collected, its thread stops

    await asyncio.to_thread(forgotten_client)
    gc.collect()
    for _ in range(50):
        if not any(t.name == "kairos-admin-client" for t in threading.enumerate()):
            break
        await asyncio.sleep(0.05)
    assert not any(t.name == "kairos-admin-client" for t in threading.enumerate())


async def test_workers_reload_purge_and_a_sync_client_inside_a_running_loop(
    echo_backend, tmp_path: Path
) -> None:
    port = free_port()
    cache = any(p.name == "cache" for p in installed_plugins())
    plugin = "    plugins: [{name: cache, config: {default_ttl: 30}}]\n" if cache else ""
    path = tmp_path / "gateway.yaml"
    body = (
        f"listeners: [{{host: 127.0.0.1, port: {port}}}]\n"
        f"admin: {{port: 0, token: {TOKEN}}}\n"
        "observability: {access_log: {enabled: false}}\n"
        "routes:\n  - name: %s\n    prefix: /api\n"
        f"    upstream: {{backends: [{{url: '{echo_backend.url}'}}]}}\n{plugin}"
    )
    path.write_text(body % "before")
    gateway = await GatewayProcess(["--config", str(path), "--workers", "2"]).start()
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(20):
                async with http.get(
                    f"http://127.0.0.1:{port}/api/x", headers={"Connection": "close"}
                ) as response:
                    assert response.status == 200
        assert gateway.admin_url is not None
        # the gateway is another process, so a blocking client may run on this loop's thread
        with AdminClient(gateway.admin_url, token=TOKEN) as admin:
            health = admin.health()
            assert (health.workers, health.workers_alive) == (2, 2)
            assert [w.alive for w in health.worker_processes] == [True, True]
            assert admin.ready().checks == {"worker_0": True, "worker_1": True}
            (route,) = admin.metrics_summary().routes
            assert (route.route, route.requests) == ("before", 20)  # summed over both workers
            path.write_text(body % "after")
            result = admin.reload()
            assert (result.ok, result.workers) == (True, 2)
            assert [r.name for r in admin.routes()] == ["after"]
            path.write_text("routes: [broken\n")
            with pytest.raises(ReloadFailed, match="invalid YAML"):
                admin.reload()
            assert [r.name for r in admin.routes()] == ["after"]  # the old config keeps serving
            if cache:
                purged = admin.request("POST", "/cache/purge", {"all": True})
                assert purged["workers"] == 2
            families = admin.metrics()
            reloads = {
                s.labels["result"]: s.value for s in families["kairos_config_reloads"].samples
            }
            assert reloads.get("success", 0) >= 1
    finally:
        await gateway.stop()
