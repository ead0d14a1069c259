"""Every configured secret stays out of every admin response and every log line.

One gateway process runs with a secret in each place a config can hold one (admin token,
JWT secrets inline and from the environment, a Redis password in a URL and in a field, an
OTLP header, an AI API key variable, a header value from `${ENV}`). The test then drives
traffic that makes it log (good and bad credentials, a failing Redis, a failing model
endpoint), calls every admin GET endpoint of the OpenAPI document, the live stream, the
metrics, validation of a bad candidate config and a reload, stops the gateway, and greps
all of it for every secret.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest

from kairos_core import redact_url
from kairos_core.testing import GatewayProcess, free_port

pytest.importorskip("kairos_jwt")
pytest.importorskip("kairos_ratelimit")
pytest.importorskip("kairos_cache")
pytest.importorskip("kairos_otel")
pytest.importorskip("kairos_ai")

SECRETS = {
    "admin_token": "adm-S3CRET-token-4711",
    "jwt_inline": "jwt-S3CRET-inline-0123456789abcdef0123456789",
    "jwt_env": "jwt-S3CRET-env-fedcba9876543210fedcba98765",
    "ratelimit_password": "rl-S3CRET-password-31337",
    "cache_url_password": "cache-S3CRET-urlpass-8086",
    "otel_header": "otel-S3CRET-header-2718",
    "ai_key": "sk-S3CRET-ai-key-1618033988",
    "upstream_header": "up-S3CRET-header-1414",
}
ENV = {
    "KT_JWT_SECRET": SECRETS["jwt_env"],
    "KT_OTEL_KEY": SECRETS["otel_header"],
    "KT_AI_KEY": SECRETS["ai_key"],
    "KT_UPSTREAM_KEY": SECRETS["upstream_header"],
}


def _config(backend: str, closed_port: int) -> str:
    return f"""
admin: {{host: 127.0.0.1, port: 0, token: {SECRETS["admin_token"]}}}
listeners: [{{host: 127.0.0.1, port: 0}}]
observability:
  logs: {{level: debug, format: json}}
  access_log: {{destination: stdout, format: json, flush_interval: 0.05}}
plugins:
  - name: otel
    config:
      endpoint: http://127.0.0.1:{closed_port}
      headers: {{x-api-key: "${{KT_OTEL_KEY}}"}}
upstreams:
  smart:
    backends: [{{name: one, url: "{backend}"}}, {{name: two, url: "{backend}"}}]
    balancer:
      name: ai
      config:
        endpoint:
          base_url: http://127.0.0.1:{closed_port}/v1
          model: test-model
          api_key_env: KT_AI_KEY
        instruction: pick one
        backends: {{one: {{description: first}}, two: {{description: second}}}}
        timeout: 0.3
routes:
  - name: jwt
    prefix: /jwt
    upstream: {{backends: [{{url: "{backend}"}}]}}
    plugins:
      - name: jwt
        config:
          keys:
            - {{kid: inline, secret: {SECRETS["jwt_inline"]}}}
            - {{kid: env, secret_env: KT_JWT_SECRET}}
      - name: rate-limit
        config:
          backend: redis
          limits: [{{rate: 1000/s}}]
          redis:
            url: redis://127.0.0.1:{closed_port}/0
            password: {SECRETS["ratelimit_password"]}
            timeout: 0.05
          on_error: allow
  - name: cached
    prefix: /cached
    upstream: {{backends: [{{url: "{backend}"}}]}}
    plugins:
      - name: cache
        config:
          backend: redis
          redis: {{url: "redis://:{SECRETS["cache_url_password"]}@127.0.0.1:{closed_port}/0",
                   timeout: 0.05}}
      - name: headers
        config: {{request: {{set: {{X-Upstream-Key: "${{KT_UPSTREAM_KEY}}"}}}}}}
  - name: smart
    prefix: /smart
    upstream: smart
"""


async def _drive_traffic(http: aiohttp.ClientSession, url: str) -> list[str]:
    """Requests that make every plugin work and log; the gateway-made bodies and headers."""
    bodies = []
    exp = int(time.time()) + 300
    good = jwt.encode(
        {"sub": "alice", "exp": exp}, SECRETS["jwt_env"], "HS256", headers={"kid": "env"}
    )
    inline = jwt.encode(
        {"sub": "bob", "exp": exp}, SECRETS["jwt_inline"], "HS256", headers={"kid": "inline"}
    )
    forged = jwt.encode(
        {"sub": "eve", "exp": exp}, "not-the-secret-at-all-0123456789", headers={"kid": "env"}
    )
    for token, expected in ((good, 200), (inline, 200), (forged, 401), ("garbage.x.y", 401)):
        async with http.get(url + "/jwt/x", headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == expected, (token, r.status, await r.text())
            if expected != 200:  # the gateway's own answer (a 200 is the echo backend's)
                bodies.append(await r.text())
    for _ in range(2):
        async with http.get(url + "/cached/item") as r:
            assert r.status == 200
            echoed = await r.json()
            assert echoed["headers"]["X-Upstream-Key"] == SECRETS["upstream_header"]
    async with http.get(url + "/smart/pick") as r:
        assert r.status == 200
        bodies.append(json.dumps(dict(r.headers)))  # the AI decision header says why it fell back
    return bodies


async def _admin_everything(http: aiohttp.ClientSession, admin: str, config_text: str) -> list[str]:
    """Every parameterless GET of the OpenAPI document, the stream, validation and a reload."""
    auth = {"Authorization": f"Bearer {SECRETS['admin_token']}"}
    seen = []
    async with http.get(admin + "/openapi.json", headers=auth) as r:
        document = await r.json()
    paths = [p for p, ops in document["paths"].items() if "get" in ops and "{" not in p]
    assert {"/config", "/routes", "/upstreams", "/plugins", "/metrics"} <= set(paths)
    for path in paths:
        if path == "/stream":
            continue
        async with http.get(admin + path, headers=auth) as r:
            assert r.status < 500, (path, r.status)
            seen.append(f"{path}: {await r.text()}")
        async with http.get(admin + path, headers={"Authorization": "Bearer wrong"}) as r:
            seen.append(f"{path} wrong token: {r.status} {await r.text()}")
    protocols = ["kairos.stream", "bearer." + _b64(SECRETS["admin_token"])]
    async with http.ws_connect(admin + "/stream", protocols=protocols) as ws:
        seen.append(json.dumps(await ws.receive_json(timeout=5)))
    candidate = config_text.replace("port: 0, token", "port: nope, token")
    async with http.post(admin + "/config/validate", data=candidate, headers=auth) as r:
        result = await r.json()
        assert result["valid"] is False
        seen.append(json.dumps(result))
    async with http.post(admin + "/config/reload", headers=auth) as r:
        assert r.status == 200, await r.text()
        seen.append(await r.text())
    return seen


def _b64(text: str) -> str:
    import base64

    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


async def test_no_secret_in_any_response_or_log(echo_backend, tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    text = _config(echo_backend.url, free_port())
    config.write_text(text)
    gateway = await GatewayProcess(["--config", str(config)], env=ENV).start()
    try:
        assert gateway.admin_url is not None
        async with aiohttp.ClientSession() as http:
            seen = await _drive_traffic(http, gateway.url)
            seen += await _admin_everything(http, gateway.admin_url, text)
        await asyncio.sleep(0.3)  # let the access log flush
    finally:
        await gateway.stop()
    logs = gateway.stdout_lines + gateway.stderr_lines
    assert any('"status": 401' in line or "401" in line for line in logs), "no access log seen"
    assert any("redis" in line.lower() for line in logs), "the failing Redis was never logged"
    leaks = _leaks(seen + logs)
    assert not leaks, leaks


def _leaks(texts: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, secret in SECRETS.items():
        hits = [
            text[max(0, text.find(secret) - 150) : text.find(secret) + 60]
            for text in texts
            if secret in text
        ]
        if hits:
            found[name] = hits
    return found


def test_leak_finder_finds_a_planted_secret() -> None:
    """The grep above really looks: a planted secret is reported."""
    planted: list[Any] = [f"ok {time.time()}", f"x {SECRETS['ai_key']} y"]
    assert list(_leaks(planted)) == ["ai_key"]


def test_redact_url_masks_only_the_password() -> None:
    assert redact_url("redis://:pw@h:6379/0") == "redis://:**redacted**@h:6379/0"
    assert redact_url("rediss://user:pw@h/1 and http://a:b@c/") == (
        "rediss://user:**redacted**@h/1 and http://a:**redacted**@c/"
    )
    for untouched in ("redis://h:6379/0", "mailto:a@b.c", "http://h/x@y", "user@host"):
        assert redact_url(untouched) == untouched
