"""docs/plugins/ai.md: its examples load and run, and every option is documented."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kairos_ai
import pytest
import yaml
from kairos_ai.config import AiBalancerConfig, DecisionHeaderConfig, EndpointConfig
from pydantic import BaseModel

from kairos_core.testing import Backend

DOC = Path(__file__).resolve().parents[3] / "docs" / "plugins" / "ai.md"


def blocks() -> list[Any]:
    return [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)]


async def test_full_example_runs(
    kairos_gateway: Any,
    http: Any,
    fake_model: Any,
    backend_factory: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kairos_core.testing import echo_app

    config = next(b for b in blocks() if "upstreams" in b)
    pool = config["upstreams"]["inference"]
    servers: dict[str, Backend] = {}
    for backend in pool["backends"]:
        servers[backend["name"]] = await backend_factory(echo_app(backend["name"]))
        backend["url"] = servers[backend["name"]].url
    pool["balancer"]["config"]["endpoint"]["base_url"] = fake_model.base_url
    monkeypatch.setenv("OPENAI_API_KEY", "sk-doc-test")
    fake_model.choose = "eu"
    gw = await kairos_gateway(config, plugins=[kairos_ai])
    headers = {"Content-Type": "application/json", "X-Tenant-Region": "eu"}
    body = b'{"prompt": "Summarise the contract for ann@example.com"}'
    async with http.post(gw.url + "/v1/complete", data=body, headers=headers) as response:
        assert response.headers["X-Backend"] == "eu"
        assert response.headers["X-Kairos-Balancer"] == "ai; backend=eu"
    document = fake_model.user_messages()[0]
    assert document["headers"] == {"content-type": "application/json", "x-tenant-region": "eu"}
    assert document["body"] == '{"prompt": "Summarise the contract for [redacted]"}'


def test_endpoint_and_stage_snippets_validate() -> None:
    snippets = [b for b in blocks() if "endpoint" in b and "upstreams" not in b]
    assert len(snippets) == 3
    for snippet in snippets:
        EndpointConfig.model_validate(snippet["endpoint"])
    stage = next(b for b in blocks() if isinstance(b, dict) and "plugins" in b and len(b) == 1)
    DecisionHeaderConfig.model_validate(stage["plugins"][0]["config"])


def _fields(model: type[BaseModel]) -> set[str]:
    names = set()
    for name, field in model.model_fields.items():
        names.add(name)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= _fields(annotation)
    return names


def test_every_option_is_documented() -> None:
    text = DOC.read_text()
    for name in _fields(AiBalancerConfig) | _fields(DecisionHeaderConfig):
        documented = f"`{name}`" in text or f".{name}`" in text or f"`{name}." in text
        assert documented, f"option {name!r} is not documented"
