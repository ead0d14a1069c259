"""schemathesis against the OpenAPI document a real `kairos serve` serves: no 5xx, answers as documented.

Every operation but the WebSocket `/stream` is tested (coverage and fuzzing phases, a few
examples each) with the admin token. The gateway has routes, an upstream pool with a live and a
dead backend, a plugin admin route (`POST /cache/purge`, when kairos-cache is installed) and a
config file to reload. schemathesis runs as its own command (`python -m schemathesis.cli run`),
so the test does not depend on its pytest integration; its report is shown when a check fails.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from pathlib import Path

import aiohttp

from kairos_core.admin.openapi import build_openapi
from kairos_core.plugins import installed_plugins
from kairos_core.testing import GatewayProcess, require_service

TOKEN = "schemathesis-admin-token"
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "positive_data_acceptance",
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
    "ignored_auth",
]


def gateway_config(backend_url: str) -> str:
    cache = any(p.name == "cache" for p in installed_plugins())
    plugin = "{name: cache, config: {default_ttl: 5}}" if cache else "{name: headers}"
    return f"""
listeners: [{{host: 127.0.0.1, port: 0}}]
admin: {{host: 127.0.0.1, port: 0, token: {TOKEN}}}
observability: {{access_log: {{enabled: false}}}}
upstreams:
  svc:
    backends: [{{url: "{backend_url}", name: echo-1}}, {{url: "http://127.0.0.1:9", name: gone}}]
routes:
  - name: users
    path: /users/{{id}}
    methods: [GET]
    upstream: svc
    plugins: [{plugin}]
  - name: static
    prefix: /static
    strip_prefix: true
    upstream: svc
"""


def schemathesis_config(plugin_paths: list[str]) -> str:
    """Project settings: the token, the checks, a few examples per operation, /stream left out."""
    lines = [
        f'headers = {{ Authorization = "Bearer {TOKEN}" }}',
        "[generation]",
        "max-examples = 10",
        "[checks]",
        "enabled = false",
        *(f"{check}.enabled = true" for check in CHECKS),
        "[[operations]]",
        'include-path = "/stream"',
        "enabled = false",
    ]
    if plugin_paths:
        # a plugin route documents no request body: valid input cannot be derived for it
        lines += [
            "[[operations]]",
            f"include-path = {json.dumps(plugin_paths)}",
            "checks.positive_data_acceptance.enabled = false",
        ]
    return "\n".join(lines) + "\n"


async def test_admin_api_matches_its_openapi_document(echo_backend, tmp_path: Path) -> None:
    require_service(
        "schemathesis",
        importlib.util.find_spec("schemathesis") is not None,
        "pip install schemathesis; the nox tests session installs it",
    )
    config = tmp_path / "gateway.yaml"
    config.write_text(gateway_config(echo_backend.url))
    gateway = await GatewayProcess(["--config", str(config)]).start()
    try:
        assert gateway.admin_url is not None
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as session:
            async with session.get(gateway.admin_url + "/openapi.json") as response:
                served = set((await response.json())["paths"])
            async with session.get(gateway.url + "/users/1") as response:
                assert response.status == 200  # some traffic for /metrics and /upstreams
        plugin_paths = sorted(served - set(build_openapi()["paths"]))
        settings = tmp_path / "schemathesis.toml"
        settings.write_text(schemathesis_config(plugin_paths))
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(settings),
            "--no-color",
            "run",
            gateway.admin_url + "/openapi.json",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=tmp_path,
        )
        try:
            async with asyncio.timeout(120):
                output, _ = await process.communicate()
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
        report = output.decode(errors="replace")
        assert process.returncode == 0, report
        # every operation but /stream and the document itself (schemathesis leaves out its source)
        assert f"Tested: {len(served) - 2}" in report, report
    finally:
        await gateway.stop()
