"""The admin API: views, redaction, validation, reload, token rules and the OpenAPI document."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kairos_core.testing import GatewayProcess


def config(echo_url: str, **extra: Any) -> dict[str, Any]:
    return {
        "upstreams": {"svc": {"backends": [{"url": echo_url, "name": "echo-1"}]}},
        "routes": [
            {
                "name": "users",
                "path": "/users/{id}",
                "methods": ["GET"],
                "upstream": "svc",
                "plugins": [{"name": "headers", "config": {"request": {"set": {"X-A": "1"}}}}],
            },
        ],
        **extra,
    }


async def test_views(kairos_gateway, echo_backend, http) -> None:
    gw = await kairos_gateway(config(echo_backend.url))
    async with http.get(gw.admin_url + "/routes") as response:
        routes = await response.json()
    assert routes[0]["name"] == "users"
    assert routes[0]["path"] == "/users/{id}"
    assert [link["name"] for link in routes[0]["chain"]] == ["headers", "proxy"]
    async with http.get(gw.admin_url + "/upstreams") as response:
        upstreams = await response.json()
    assert upstreams[0]["name"] == "svc"
    assert upstreams[0]["backends"][0] == {
        "name": "echo-1",
        "url": echo_backend.url,
        "weight": 1,
        "state": "up",
        "healthy": True,
        "available": True,
        "circuit": "closed",
        "in_flight": 0,
    }
    async with http.get(gw.admin_url + "/plugins") as response:
        plugins = {p["name"]: p for p in await response.json()}
    assert plugins["headers"]["enabled"] is True
    async with http.get(gw.admin_url + "/health") as response:
        health = await response.json()
    assert health["status"] == "ok"
    assert health["routes"] == 1


async def test_config_view_never_shows_secrets(
    kairos_gateway, echo_backend, http, monkeypatch
) -> None:
    monkeypatch.setenv("KAIROS_TEST_UPSTREAM_SECRET", "s3cr3t-from-env-value")
    text = f"""
admin: {{token: admin-token-value-123, port: 0}}
listeners: [{{host: 127.0.0.1, port: 0}}]
routes:
  - path: /a
    upstream: {{backends: [{{url: "{echo_backend.url}"}}]}}
    plugins:
      - name: headers
        config:
          request: {{set: {{X-Api-Key: "${{KAIROS_TEST_UPSTREAM_SECRET}}", X-Plain: visible}}}}
"""
    from kairos_core.config import load_config_text

    gw = await kairos_gateway(load_config_text(text, "secrets.yaml"))
    headers = {"Authorization": "Bearer admin-token-value-123"}
    async with http.get(gw.admin_url + "/config", headers=headers) as response:
        body = await response.text()
    assert "admin-token-value-123" not in body
    assert "s3cr3t-from-env-value" not in body
    assert "visible" in body


async def test_validate_candidates(kairos_gateway, echo_backend, http) -> None:
    gw = await kairos_gateway(config(echo_backend.url))
    good = f"routes: [{{path: /x, upstream: {{backends: [{{url: '{echo_backend.url}'}}]}}, plugins: [{{name: headers}}]}}]\n"
    async with http.post(gw.admin_url + "/config/validate", data=good) as response:
        assert await response.json() == {"valid": True, "problems": [], "warnings": []}
    bad = "routes:\n  - path: /x\n    upstream: {backends: [{url: 'http://x:1'}]}\n    plugins: [{name: headers, config: {nope: 1}}]\n"
    async with http.post(gw.admin_url + "/config/validate", data=bad) as response:
        result = await response.json()
    assert result["valid"] is False
    assert result["problems"] == [
        {
            "loc": "routes[0].plugins[0].config.nope",
            "message": "unknown field (check the spelling; see the configuration reference)",
            "line": 4,
        }
    ]
    async with http.post(gw.admin_url + "/config/validate", data="") as response:
        assert response.status == 400
    async with http.post(gw.admin_url + "/config/reload") as response:
        assert response.status == 422  # started from a dict, not a file
        assert (await response.json())["ok"] is False


async def test_token_is_required_when_configured(kairos_gateway, echo_backend, http) -> None:
    gw = await kairos_gateway(config(echo_backend.url, admin={"token": "t0ken-abc", "port": 0}))
    for path in ("/routes", "/upstreams", "/config", "/metrics", "/plugins", "/openapi.json"):
        async with http.get(gw.admin_url + path) as response:
            assert response.status == 401, path
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        async with http.get(
            gw.admin_url + path, headers={"Authorization": "Bearer wrong"}
        ) as response:
            assert response.status == 401, path
        async with http.get(
            gw.admin_url + path, headers={"Authorization": "Bearer t0ken-abc"}
        ) as response:
            assert response.status == 200, path
    async with http.get(gw.admin_url + "/health") as response:
        assert response.status == 200  # probes stay open; they reveal nothing


async def test_openapi_describes_every_endpoint(kairos_gateway, echo_backend, http) -> None:
    gw = await kairos_gateway(config(echo_backend.url))
    async with http.get(gw.admin_url + "/openapi.json") as response:
        document = await response.json()
    paths = set(document["paths"])
    assert {
        "/health",
        "/ready",
        "/live",
        "/metrics",
        "/routes",
        "/upstreams",
        "/config",
        "/config/validate",
        "/config/reload",
        "/plugins",
        "/stream",
        "/openapi.json",
    } <= paths
    assert document["components"]["schemas"]["RouteInfo"]["properties"]["chain"]


async def test_reload_endpoint_and_file_watch(echo_backend, tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"

    def write(route: str) -> None:
        path.write_text(
            "listeners: [{host: 127.0.0.1, port: 0}]\nadmin: {port: 0}\n"
            f"routes:\n  - path: {route}\n    upstream: {{backends: [{{url: '{echo_backend.url}'}}]}}\n"
        )

    write("/one")
    gateway = await GatewayProcess(["--config", str(path), "--watch"]).start()
    try:
        assert gateway.admin_url is not None
        async with aiohttp.ClientSession() as session:
            write("/two")
            async with session.post(gateway.admin_url + "/config/reload") as response:
                assert (await response.json())["ok"] is True
            async with session.get(gateway.url + "/two") as response:
                assert response.status == 200
            path.write_text("routes: [broken\n")
            async with session.post(gateway.admin_url + "/config/reload") as response:
                assert response.status == 422
                assert "invalid YAML" in (await response.json())["error"]
            async with session.get(gateway.url + "/two") as response:
                assert response.status == 200  # the old config keeps serving
            write("/three")
            os.utime(path)
            for _ in range(50):
                async with session.get(gateway.url + "/three") as response:
                    if response.status == 200:
                        break
                await __import__("asyncio").sleep(0.1)
            assert response.status == 200  # --watch picked the change up
            async with session.get(gateway.admin_url + "/metrics") as response:
                text = await response.text()
            assert 'kairos_config_reloads_total{result="success"}' in text
    finally:
        await gateway.stop()


@pytest.mark.parametrize("workers", [2])
async def test_admin_actions_reach_every_worker(echo_backend, tmp_path: Path, workers: int) -> None:
    from kairos_core.testing.process import free_port

    port = free_port()
    path = tmp_path / "gw.yaml"
    body = (
        f"listeners: [{{host: 127.0.0.1, port: {port}}}]\nadmin: {{port: 0}}\n"
        "observability: {access_log: {enabled: false}}\n"
        "routes:\n  - path: %s\n" + f"    upstream: {{backends: [{{url: '{echo_backend.url}'}}]}}\n"
    )
    path.write_text(body % "/before")
    gateway = await GatewayProcess(["--config", str(path), "--workers", str(workers)]).start()
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(40):
                async with session.get(
                    f"http://127.0.0.1:{port}/before", headers={"Connection": "close"}
                ) as response:
                    assert response.status == 200
            async with session.get(gateway.admin_url + "/metrics") as response:
                text = await response.text()
            line = next(
                x
                for x in text.splitlines()
                if x.startswith('kairos_requests_total{method="GET",route="before"')
            )
            assert line.endswith(" 40.0")  # counted in both workers, summed at scrape time
            path.write_text(body % "/after")
            async with session.post(gateway.admin_url + "/config/reload") as response:
                result = await response.json()
            assert result == {"ok": True, "workers": workers}
            statuses = set()
            for _ in range(40):
                async with session.get(
                    f"http://127.0.0.1:{port}/after", headers={"Connection": "close"}
                ) as response:
                    statuses.add(response.status)
            assert statuses == {200}  # every worker serves the new route
            async with session.get(gateway.admin_url + "/routes") as response:
                assert [r["name"] for r in await response.json()] == ["after"]
    finally:
        await gateway.stop()
