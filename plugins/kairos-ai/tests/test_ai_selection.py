"""The model's structured answer picks the backend: JSON schema, tool calls and `auto`."""

from __future__ import annotations

from typing import Any

import kairos_ai

from kairos_core.testing import Backend

HEADER = "X-Kairos-Balancer"


async def test_json_schema_answer_picks_the_backend(
    kairos_gateway: Any,
    http: Any,
    fake_model: Any,
    named_backends: dict[str, Backend],
    ai_config: Any,
) -> None:
    fake_model.choose = "b2"
    config = ai_config(
        fake_model,
        named_backends,
        endpoint={"mode": "json_schema"},
        instruction="Send image work to the GPU box.",
        backends={
            "b1": {"description": "CPU box", "tags": ["cheap"]},
            named_backends["b2"].url: {"description": "GPU box", "tags": ["gpu", "images"]},
        },
        cache={"ttl": 0},
    )
    gw = await kairos_gateway(config, plugins=[kairos_ai])
    for _ in range(3):
        async with http.get(gw.url + "/resize?w=100") as response:
            assert response.status == 200
            assert response.headers["X-Backend"] == "b2"
            assert response.headers[HEADER] == "ai; backend=b2"
    assert len(fake_model.calls) == 3
    body = fake_model.calls[0]["body"]
    assert body["model"] == "router-1"
    assert "tools" not in body
    format_ = body["response_format"]
    assert format_["type"] == "json_schema"
    assert format_["json_schema"]["strict"] is True
    assert format_["json_schema"]["schema"]["properties"]["backend"]["enum"] == ["b1", "b2", "b3"]
    system = body["messages"][0]["content"]
    assert system.startswith("Send image work to the GPU box.")
    assert "- b1: CPU box [tags: cheap]" in system
    assert "- b2: GPU box [tags: gpu, images]" in system
    assert "- b3\n" in system
    assert fake_model.user_messages()[0] == {
        "method": "GET",
        "path": "/resize",
        "query": [["w", "100"]],
    }


async def test_tool_call_mode(
    kairos_gateway: Any,
    http: Any,
    fake_model: Any,
    named_backends: dict[str, Backend],
    ai_config: Any,
) -> None:
    fake_model.choose = "b3"
    config = ai_config(fake_model, named_backends, endpoint={"mode": "tool_call"})
    gw = await kairos_gateway(config, plugins=[kairos_ai])
    async with http.post(gw.url + "/x", data=b"{}") as response:
        assert response.headers["X-Backend"] == "b3"
        assert response.headers[HEADER] == "ai; backend=b3"
    body = fake_model.calls[0]["body"]
    assert "response_format" not in body
    assert body["tools"][0]["function"]["name"] == "choose_backend"
    assert body["tool_choice"] == {"type": "function", "function": {"name": "choose_backend"}}


async def test_auto_mode_switches_to_tool_calls_when_json_schema_is_rejected(
    kairos_gateway: Any,
    http: Any,
    fake_model: Any,
    named_backends: dict[str, Backend],
    ai_config: Any,
) -> None:
    fake_model.choose = "b2"
    fake_model.reject_json_schema = True
    config = ai_config(fake_model, named_backends, cache={"ttl": 0})
    gw = await kairos_gateway(config, plugins=[kairos_ai])
    for _ in range(3):
        async with http.get(gw.url + "/x") as response:
            assert response.headers["X-Backend"] == "b2"
            assert response.headers[HEADER] == "ai; backend=b2"
    kinds = ["tools" if "tools" in c["body"] else "json_schema" for c in fake_model.calls]
    assert kinds == ["json_schema", "tools", "tools", "tools"]


async def test_garbage_and_unknown_answers_fall_back(
    kairos_gateway: Any,
    http: Any,
    fake_model: Any,
    named_backends: dict[str, Backend],
    ai_config: Any,
) -> None:
    config = ai_config(fake_model, named_backends, cache={"ttl": 0}, fallback="first")
    gw = await kairos_gateway(config, plugins=[kairos_ai])
    fake_model.garbage = True
    async with http.get(gw.url + "/x") as response:
        assert response.status == 200
        assert response.headers["X-Backend"] == "b1"
        assert response.headers[HEADER] == "fallback; backend=b1; reason=invalid_answer"
    fake_model.garbage = False
    fake_model.choose = "b9"
    async with http.get(gw.url + "/x") as response:
        assert response.status == 200
        assert response.headers[HEADER] == "fallback; backend=b1; reason=unknown_backend"


async def test_unhealthy_backend_named_by_the_model_is_not_used(
    kairos_gateway: Any,
    http: Any,
    fake_model: Any,
    named_backends: dict[str, Backend],
    ai_config: Any,
) -> None:
    fake_model.choose = "b2"
    config = ai_config(fake_model, named_backends, cache={"ttl": 0}, fallback="first")
    gw = await kairos_gateway(config, plugins=[kairos_ai])
    pool = gw.gateway.runtime.pools["models"]
    b2 = next(b for b in pool.backends if b.name == "b2")
    b2.set_healthy(False)
    seen = set()
    for _ in range(4):
        async with http.get(gw.url + "/x") as response:
            assert response.status == 200
            seen.add(response.headers["X-Backend"])
            assert response.headers[HEADER] == "fallback; backend=b1; reason=unavailable_backend"
    assert seen == {"b1"}
    offered = fake_model.calls[-1]["body"]["response_format"]["json_schema"]["schema"]
    assert offered["properties"]["backend"]["enum"] == ["b1", "b3"]
    assert "b2" not in fake_model.calls[-1]["body"]["messages"][0]["content"]
    assert not [r for r in named_backends["b2"].records]
