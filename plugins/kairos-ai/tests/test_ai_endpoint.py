"""Endpoint settings: the API key comes from the environment and never shows; other providers."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

import kairos_ai
import pytest
import yaml

from kairos_core.testing import Backend

SECRET = "sk-test-5ecret-never-shown"


async def test_api_key_from_environment_is_sent_but_never_logged_or_configured(
    kairos_gateway: Any,
    http: Any,
    fake_model: Any,
    named_backends: dict[str, Backend],
    ai_config: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("KAIROS_AI_TEST_KEY", SECRET)
    config = ai_config(
        fake_model,
        named_backends,
        endpoint={"api_key_env": "KAIROS_AI_TEST_KEY", "organization": "org-7", "project": "p-1"},
        request={"headers": ["x-tenant"]},
    )
    caplog.set_level(logging.DEBUG)
    gw = await kairos_gateway(config, plugins=[kairos_ai])
    async with http.get(gw.url + "/x?email=ann@example.com", headers={"X-Tenant": "acme"}) as r:
        assert r.status == 200
    headers = fake_model.calls[0]["headers"]
    assert headers["Authorization"] == f"Bearer {SECRET}"
    assert headers["OpenAI-Organization"] == "org-7"
    assert headers["OpenAI-Project"] == "p-1"
    assert SECRET not in caplog.text
    assert SECRET not in gw.loaded.config.model_dump_json()
    assert SECRET not in json.dumps(gw.gateway.runtime.pools["models"].balancer.describe({}))
    for view in ("config", "upstreams", "metrics", "plugins"):
        async with http.get(f"{gw.admin_url}/{view}") as response:
            assert response.status == 200
            shown = await response.text()
            assert SECRET not in shown
            if view == "config":  # even the variable's name is masked there
                assert '"api_key_env": "**redacted**"' in shown
            if view == "metrics":
                assert (
                    'kairos_ai_decisions_total{backend="b1",pool="models",reason="",source="ai"} 1.0'
                    in shown
                )
                assert 'kairos_ai_llm_tokens_total{kind="prompt",pool="models"} 42.0' in shown
                assert "kairos_ai_llm_latency_seconds_bucket" in shown
    prompts = [r.getMessage() for r in caplog.records if r.name == "kairos.ai"]
    assert any("prompt" in m and "acme" in m and "[redacted]" in m for m in prompts)
    assert not any("ann@example.com" in m for m in prompts)
    assert any("answer" in m and '{"backend": "b1"}' in m for m in prompts)
    assert all(r.levelno == logging.DEBUG for r in caplog.records if r.name == "kairos.ai")


async def test_azure_style_key_header_query_and_keyless_endpoints(
    kairos_gateway: Any,
    http: Any,
    fake_model: Any,
    named_backends: dict[str, Backend],
    ai_config: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAIROS_AI_TEST_KEY", SECRET)
    monkeypatch.setenv("KAIROS_AI_TEST_GATEWAY_TOKEN", "gw-token")
    azure = ai_config(
        fake_model,
        named_backends,
        endpoint={
            "api_key_env": "KAIROS_AI_TEST_KEY",
            "api_key_header": "api-key",
            "query": {"api-version": "2024-10-21"},
            "headers": {"X-Client": "kairos"},
            "headers_from_env": {"X-Gateway-Token": "KAIROS_AI_TEST_GATEWAY_TOKEN"},
        },
    )
    gw = await kairos_gateway(azure, plugins=[kairos_ai])
    async with http.get(gw.url + "/x") as response:
        assert response.headers["X-Kairos-Balancer"] == "ai; backend=b1"
    call = fake_model.calls[-1]
    assert call["headers"]["api-key"] == SECRET
    assert "Authorization" not in call["headers"]
    assert call["headers"]["X-Client"] == "kairos"
    assert call["headers"]["X-Gateway-Token"] == "gw-token"
    assert call["query"] == {"api-version": "2024-10-21"}

    monkeypatch.setenv("OPENAI_API_KEY", "ambient-key-must-not-be-used")
    keyless = await kairos_gateway(ai_config(fake_model, named_backends), plugins=[kairos_ai])
    async with http.get(keyless.url + "/x") as response:
        assert response.headers["X-Kairos-Balancer"] == "ai; backend=b1"
    assert "Authorization" not in fake_model.calls[-1]["headers"]


async def _kairos(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    import os

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kairos_cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_missing_key_variable_is_a_config_error_naming_file_and_field(
    tmp_path: Path, fake_model: Any, named_backends: dict[str, Backend], ai_config: Any
) -> None:
    config = ai_config(fake_model, named_backends, endpoint={"api_key_env": "KAIROS_AI_UNSET_KEY"})
    path = tmp_path / "gw.yaml"
    path.write_text(yaml.safe_dump(config))
    code, output = await _kairos("validate", str(path))
    assert code == 1
    assert "gw.yaml" in output
    assert "upstreams.models.balancer" in output
    assert "endpoint.api_key_env: environment variable 'KAIROS_AI_UNSET_KEY' is not set" in output


async def test_routes_test_shows_the_prompt_and_asks_only_when_told(
    tmp_path: Path, fake_model: Any, named_backends: dict[str, Backend], ai_config: Any
) -> None:
    config = ai_config(
        fake_model,
        named_backends,
        request={"headers": ["content-type"], "body_bytes": 200},
        backends={"b3": {"description": "EU data only", "tags": ["eu"]}},
    )
    path = tmp_path / "gw.yaml"
    path.write_text(yaml.safe_dump(config))
    body = '{"user": "ann@example.com", "region": "eu"}'
    args = ["routes", "test", str(path), "POST", "/orders?token=abc", "--body", body]
    args += ["-H", "Content-Type: application/json", "-H", "Authorization: Bearer zzz"]
    code, output = await _kairos(*args, "--json")
    assert code == 0, output
    described = json.loads(output)["balancer"]
    assert described["model"] == "router-1"
    assert described["candidates"] == ["b1", "b2", "b3"]
    assert "- b3: EU data only [tags: eu]" in described["messages"][0]["content"]
    request = json.loads(described["messages"][1]["content"])
    assert request == {
        "method": "POST",
        "path": "/orders",
        "query": [["token", "[redacted]"]],
        "headers": {"content-type": "application/json"},
        "body": '{"user": "[redacted]", "region": "eu"}',
    }
    assert described["request"] == request
    assert "response_format" in described
    assert "answer" not in described
    assert fake_model.calls == []

    fake_model.choose = "b3"
    code, output = await _kairos(*args, "--ask-model")
    assert code == 0, output
    assert '"backend": "b3"' in output
    assert '"source": "ai"' in output
    assert len(fake_model.calls) == 1
    assert json.loads(fake_model.calls[0]["body"]["messages"][1]["content"]) == request


async def test_kairos_serve_loads_both_components_from_a_yaml_file(
    tmp_path: Path,
    http: Any,
    fake_model: Any,
    named_backends: dict[str, Backend],
    ai_config: Any,
) -> None:
    from kairos_core.testing import GatewayProcess

    fake_model.choose = "b2"
    config = ai_config(fake_model, named_backends, endpoint={"api_key_env": "KAIROS_AI_TEST_KEY"})
    config["admin"] = {"enabled": False}
    path = tmp_path / "gw.yaml"
    path.write_text(yaml.safe_dump(config))
    gateway = GatewayProcess(["-c", str(path), "--port", "0"], env={"KAIROS_AI_TEST_KEY": SECRET})
    await gateway.start()
    try:
        for expected in ("ai; backend=b2", "cache; backend=b2"):
            async with http.get(gateway.url + "/from-yaml") as response:
                assert response.status == 200
                assert response.headers["X-Backend"] == "b2"
                assert response.headers["X-Kairos-Balancer"] == expected
    finally:
        await gateway.stop()
    assert fake_model.calls[0]["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert not any(SECRET in line for line in gateway.stderr_lines + gateway.stdout_lines)
    assert not any("HTTP Request" in line for line in gateway.stderr_lines)  # no line per call
