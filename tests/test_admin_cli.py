"""The operator CLI (`kairos health|metrics|routes list|backends|config ...`) against real gateways."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import click
import yaml
from click.testing import CliRunner, Result

from kairos_cli.backends_cmd import backends
from kairos_cli.config_cmd import config
from kairos_cli.health_cmd import health
from kairos_cli.main import cli
from kairos_cli.metrics_cmd import metrics
from kairos_cli.routes_cmd import routes
from kairos_core.testing import GatewayProcess
from kairos_core.testing.process import free_port

TOKEN = "cli-admin-token-1"


def gateway_config(echo_url: str) -> dict[str, Any]:
    return {
        "admin": {"port": 0, "token": TOKEN},
        "upstreams": {
            "svc": {
                "backends": [
                    {"url": echo_url, "name": "echo-1"},
                    {"url": echo_url, "name": "echo-2", "weight": 3},
                ]
            }
        },
        "routes": [
            {
                "name": "users",
                "path": "/users/{id}",
                "methods": ["GET"],
                "upstream": "svc",
                "plugins": [{"name": "headers", "config": {"request": {"set": {"X-A": "1"}}}}],
            },
            {"name": "files", "prefix": "/files", "strip_prefix": True, "upstream": "svc"},
        ],
    }


async def invoke(command: click.Command, *args: str, **env: str) -> Result:
    """Run a command in a thread: the in-process gateway keeps serving on this loop."""
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, command, list(args), env=env or None)


async def start(kairos_gateway, echo_backend, http) -> tuple[str, list[str]]:
    gw = await kairos_gateway(gateway_config(echo_backend.url))
    for _ in range(3):
        async with http.get(gw.url + "/users/7") as response:
            assert response.status == 200
    async with http.get(gw.url + "/users/8", headers={"X-Echo-Status": "503"}) as response:
        assert response.status == 503
    return gw.admin_url, ["--url", gw.admin_url, "--token", TOKEN]


async def test_health_backends_and_routes(kairos_gateway, echo_backend, http) -> None:
    _admin_url, options = await start(kairos_gateway, echo_backend, http)
    result = await invoke(health, *options)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "status   ok"
    assert lines[1] == "ready    yes (config ok, listeners ok)"
    assert "workers  1/1 alive" in lines
    assert "routes   2" in lines
    as_json = json.loads((await invoke(health, *options, "--json")).output)
    assert as_json["health"]["status"] == "ok" and as_json["ready"]["ready"] is True

    result = await invoke(backends, *options)
    assert result.exit_code == 0, result.output
    header, first, second, _blank, footer = result.output.splitlines()
    assert header.split() == [
        "upstream",
        "balancer",
        "backend",
        "url",
        "weight",
        "state",
        "circuit",
        "in",
        "flight",
    ]
    assert first.split() == [
        "svc",
        "round_robin",
        "echo-1",
        echo_backend.url,
        "1",
        "up",
        "closed",
        "0",
    ]
    assert second.split()[2] == "echo-2" and second.split()[4] == "3"
    assert header.index("state") == first.index("up")  # columns are aligned
    assert footer == "2 backends: 2 available, 0 not"
    pools = json.loads((await invoke(backends, *options, "--json")).output)
    assert [b["name"] for b in pools[0]["backends"]] == ["echo-1", "echo-2"]

    result = await invoke(routes, "list", *options)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "route  methods  hosts  match             upstream  plugins",
        "users  GET      *      /users/{id}       svc       headers",
        "files  *        *      /files/* (strip)  svc       -",
    ]
    listed = json.loads((await invoke(routes, "list", *options, "--json")).output)
    assert [route["name"] for route in listed] == ["users", "files"]
    assert listed[0]["chain"][0]["name"] == "headers"


async def test_metrics_summary_raw_and_json(kairos_gateway, echo_backend, http) -> None:
    _admin_url, options = await start(kairos_gateway, echo_backend, http)
    result = await invoke(metrics, *options)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == [
        "route",
        "requests",
        "5xx",
        "4xx",
        "error",
        "rate",
        "p50",
        "p95",
        "p99",
    ]
    users = lines[1].split()
    assert users[:5] == ["users", "4", "1", "0", "25.0%"]
    assert all(cell.endswith(("ms", "s")) for cell in users[5:8])
    assert len(lines[0]) == len(lines[1])  # numbers are right-aligned under their headers
    assert "in flight 0, open connections" in result.output
    assert "backends: 2 up, 0 down" in result.output
    assert "svc       echo-1   up     closed" in result.output

    raw = await invoke(metrics, *options, "--raw")
    assert "# TYPE kairos_requests_total counter" in raw.output
    assert 'kairos_requests_total{method="GET",route="users",status_class="5xx"} 1.0' in raw.output

    summary = json.loads((await invoke(metrics, *options, "--json")).output)
    assert summary["routes"][0]["route"] == "users"
    assert summary["routes"][0]["error_rate"] == 0.25
    assert (summary["backends_up"], summary["backends_down"]) == (2, 0)


async def test_config_show_reload_and_validate(
    kairos_gateway, echo_backend, http, tmp_path: Path
) -> None:
    _admin_url, options = await start(kairos_gateway, echo_backend, http)
    shown = await invoke(config, "show", *options)
    assert shown.exit_code == 0, shown.output
    data = yaml.safe_load(shown.output)
    assert [route["name"] for route in data["routes"]] == ["users", "files"]
    assert TOKEN not in shown.output
    assert json.loads((await invoke(config, "show", *options, "--json")).output) == data

    reload = await invoke(config, "reload", *options)
    assert reload.exit_code == 1
    assert reload.output == (
        "Error: reload refused, the current configuration keeps serving: "
        "this gateway was not started from a config file\n"
    )

    good = tmp_path / "good.yaml"
    good.write_text(
        f"routes: [{{path: /x, upstream: {{backends: [{{url: '{echo_backend.url}'}}]}}}}]\n"
    )
    result = await invoke(config, "validate", str(good), *options)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{good}: OK (checked by http://")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "routes:\n  - path: /x\n    upstream: {backends: [{url: 'http://h:1'}]}\n"
        "    plugins: [{name: headers, config: {nope: 1}}]\n"
    )
    result = await invoke(config, "validate", str(bad), *options)
    assert result.exit_code == 1
    assert f"{bad}:4: routes[0].plugins[0].config.nope: unknown field" in result.stderr
    verdict = json.loads((await invoke(config, "validate", str(bad), *options, "--json")).stdout)
    assert verdict["valid"] is False


async def test_unreachable_gateway_and_wrong_token_exit_1_with_one_line(
    kairos_gateway, echo_backend, http
) -> None:
    admin_url, _options = await start(kairos_gateway, echo_backend, http)
    closed = f"http://127.0.0.1:{free_port()}"
    for command, args in ((health, ()), (metrics, ()), (routes, ("list",)), (config, ("show",))):
        result = await invoke(command, *args, "--url", closed)
        assert result.exit_code == 1
        assert result.output == (
            f"Error: cannot reach the Kairos admin API at {closed}: connection refused "
            "(is `kairos serve` running? set --url or KAIROS_ADMIN_URL)\n"
        )
    result = await invoke(backends, "--url", admin_url, "--token", "nope")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: the admin token was refused by {admin_url}/upstreams "
        "(set --token or KAIROS_ADMIN_TOKEN)\n"
    )
    result = await invoke(metrics, "--url", admin_url)
    assert result.exit_code == 1
    assert "the admin token is required" in result.output
    # the environment gives URL and token too
    result = await invoke(routes, "list", KAIROS_ADMIN_URL=admin_url, KAIROS_ADMIN_TOKEN=TOKEN)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1].startswith("users")


def test_commands_are_registered_and_config_is_an_open_group() -> None:
    ctx = click.Context(cli)
    assert {"health", "metrics", "backends", "config", "routes"} <= set(cli.list_commands(ctx))
    group = cli.get_command(ctx, "config")
    assert isinstance(group, click.Group)
    assert {"show", "reload", "validate"} <= set(group.commands)
    routes_group = cli.get_command(ctx, "routes")
    assert isinstance(routes_group, click.Group)
    assert {"list", "test"} <= set(routes_group.commands)
    for name in ("health", "metrics", "backends"):
        command = cli.get_command(ctx, name)
        assert command is not None
        assert {"--url", "--token", "--json", "--timeout"} <= {
            opt for param in command.params for opt in param.opts
        }


async def test_cli_processes_against_a_two_worker_gateway(echo_backend, tmp_path: Path) -> None:
    port = free_port()
    path = tmp_path / "gateway.yaml"
    path.write_text(
        f"listeners: [{{host: 127.0.0.1, port: {port}}}]\n"
        f"admin: {{port: 0, token: {TOKEN}}}\n"
        "observability: {access_log: {enabled: false}}\n"
        f"routes:\n  - {{name: api, prefix: /api, upstream: {{backends: [{{url: '{echo_backend.url}'}}]}}}}\n"
    )
    gateway = await GatewayProcess(["--config", str(path), "--workers", "2"]).start()
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(10):
                async with session.get(
                    f"http://127.0.0.1:{port}/api/x", headers={"Connection": "close"}
                ) as response:
                    assert response.status == 200
        assert gateway.admin_url is not None
        env = {"KAIROS_ADMIN_URL": gateway.admin_url, "KAIROS_ADMIN_TOKEN": TOKEN}
        result = await invoke(health, **env)
        assert result.exit_code == 0, result.output
        assert "workers  2/2 alive" in result.output
        assert "ready    yes (worker_0 ok, worker_1 ok)" in result.output
        assert result.output.splitlines()[-3].split()[:3] == ["worker", "pid", "alive"]
        result = await invoke(config, "reload", **env)
        assert (result.exit_code, result.output) == (0, "configuration reloaded in 2 workers\n")
        # once as a real `kairos` process: the console entry point, stdout and exit status
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "kairos_cli", "metrics"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **env},
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[1].split()[:5] == ["api", "10", "0", "0", "0.0%"]
        await gateway.stop()
        result = await invoke(backends, **env)
        assert result.exit_code == 1
        assert result.output.startswith(
            f"Error: cannot reach the Kairos admin API at {gateway.admin_url}: connection refused"
        )
    finally:
        await gateway.stop()
