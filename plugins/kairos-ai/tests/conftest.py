"""A local OpenAI-compatible model server (slow, failing or talking garbage on demand) and helpers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from kairos_core.testing import Backend, echo_app


@dataclass
class FakeModel:
    """Implements POST /v1/chat/completions with structured output and tool calls."""

    url: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)
    """Every request: `headers`, `query`, `body` (parsed JSON) and `raw` (the bytes received)."""
    choose: str | Callable[[dict[str, Any]], str] | None = None
    """The backend named in answers; default: the first one the schema allows."""
    delay: float = 0.0
    status: int = 200
    garbage: bool = False
    reject_json_schema: bool = False
    usage: tuple[int, int] = (42, 7)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    """Set at teardown: slow answers end at once so the server can stop."""

    @property
    def base_url(self) -> str:
        """What the `openai` client is pointed at."""
        return f"{self.url}/v1"

    def user_messages(self) -> list[dict[str, Any]]:
        """The request documents the selector sent, one per call."""
        return [json.loads(c["body"]["messages"][1]["content"]) for c in self.calls]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = json.loads(raw)
        self.calls.append(
            {
                "headers": request.headers.copy(),
                "query": dict(request.query),
                "body": body,
                "raw": raw,
            }
        )
        if self.delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), self.delay)
        if self.status != 200:
            return web.json_response(
                {"error": {"message": "model is down", "type": "server_error"}}, status=self.status
            )
        uses_schema = body.get("response_format", {}).get("type") == "json_schema"
        if uses_schema and self.reject_json_schema:
            return web.json_response(
                {"error": {"message": "response_format json_schema is not supported"}}, status=400
            )
        if "tools" in body:
            schema = body["tools"][0]["function"]["parameters"]
        elif uses_schema:
            schema = body["response_format"]["json_schema"]["schema"]
        else:
            schema = {"properties": {"backend": {"enum": ["?"]}}}
        allowed = schema["properties"]["backend"]["enum"]
        choose = self.choose
        name = choose(body) if callable(choose) else choose or allowed[0]
        text = (
            "I think the second one would be best!"
            if self.garbage
            else json.dumps({"backend": name})
        )
        message: dict[str, Any] = {"role": "assistant", "content": text}
        finish = "stop"
        if "tools" in body and not self.garbage:
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "choose_backend", "arguments": text},
                    }
                ],
            }
            finish = "tool_calls"
        return web.json_response(
            {
                "id": f"chatcmpl-{len(self.calls)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": {
                    "prompt_tokens": self.usage[0],
                    "completion_tokens": self.usage[1],
                    "total_tokens": sum(self.usage),
                },
            }
        )


@pytest_asyncio.fixture
async def fake_model(backend_factory: Any) -> AsyncIterator[FakeModel]:
    """A started fake model server."""
    model = FakeModel()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", model.handle)
    started = await backend_factory(app)
    model.url = started.url
    yield model
    model.stopping.set()


@pytest_asyncio.fixture
async def named_backends(backend_factory: Any) -> dict[str, Backend]:
    """Three echo backends named b1, b2, b3 (each answers with `X-Backend: NAME`)."""
    return {name: await backend_factory(echo_app(name)) for name in ("b1", "b2", "b3")}


def make_ai_config(
    model: FakeModel,
    servers: dict[str, Backend],
    /,
    *,
    header: bool = True,
    route: dict[str, Any] | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """A gateway config: route `/` on pool `models` balanced by `ai` against the fake model."""
    endpoint = {"base_url": model.base_url, "model": "router-1", **settings.pop("endpoint", {})}
    balancer = {"endpoint": endpoint, "timeout": 2.0, **settings}
    plugins = [{"name": "ai-decision-header"}] if header else []
    return {
        "upstreams": {
            "models": {
                "balancer": {"name": "ai", "config": balancer},
                "backends": [{"name": name, "url": b.url} for name, b in servers.items()],
            }
        },
        "routes": [
            {
                "name": "all",
                "prefix": "/",
                "upstream": "models",
                "plugins": plugins,
                **(route or {}),
            }
        ],
    }


@pytest.fixture
def ai_config() -> Callable[..., dict[str, Any]]:
    """`ai_config(fake_model, backends, **balancer_settings)` builds a gateway config."""
    return make_ai_config
