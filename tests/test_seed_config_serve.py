"""`kairos serve` runs the seed example (and its migrated YAML) end to end against real backends."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from click.testing import CliRunner
from core_ws_backend import WsBackendState, ws_app
from seed_examples import example, router, token, with_ports, write

from kairos_cli.main import cli
from kairos_core.config import load_config_text
from kairos_core.process import ServeOptions, apply_overrides
from kairos_core.testing import Backend, GatewayProcess, echo_app, running_gateway, start_backend

HAS_AI = importlib.util.find_spec("kairos_ai") is not None
RATE_LIMITED_CLIENT = "127.0.0.77"
"""Source address of the rate-limit checks: the PerIP budget of 127.0.0.1 stays untouched."""


@dataclass
class FakeModel:
    """An OpenAI-compatible chat completions endpoint that always picks the last backend offered."""

    calls: list[dict[str, Any]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls.append(body)
        schema = (
            body["tools"][0]["function"]["parameters"]
            if "tools" in body
            else body["response_format"]["json_schema"]["schema"]
        )
        choice = schema["properties"]["backend"]["enum"][-1]
        message = {"role": "assistant", "content": json.dumps({"backend": choice})}
        return web.json_response(
            {
                "id": f"chatcmpl-{len(self.calls)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        )


@dataclass
class Peers:
    """The example's backends (by their port in the example) and the model endpoint."""

    http: dict[int, Backend]
    ws: WsBackendState
    model: FakeModel
    model_url: str
    ports: dict[int, int]

    def paths(self, port: int, prefix: str = "/") -> list[str]:
        """Paths backend `port` received (health probes left out)."""
        return [
            r.path
            for r in self.http[port].records
            if r.path.startswith(prefix) and r.path != "/health"
        ]


async def start_peers(stack: AsyncExitStack) -> Peers:
    """Echo backends for 9001-9004 and 9006, a WebSocket echo for 9005, and a fake model."""
    http = {
        port: await stack.enter_async_context(start_backend(echo_app(f"b{port}")))
        for port in (9001, 9002, 9003, 9004, 9006)
    }
    ws = WsBackendState()
    ws_backend = await stack.enter_async_context(start_backend(ws_app(ws)))
    model = FakeModel()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", model.handle)
    model_backend = await stack.enter_async_context(start_backend(app))
    ports = {old: backend.port for old, backend in http.items()} | {9005: ws_backend.port}
    return Peers(http, ws, model, f"{model_backend.url}/v1", ports)


def seed_copy(peers: Peers) -> dict[str, Any]:
    """The example pointed at the started peers (without the AI route's policy if kairos-ai is absent)."""
    config = with_ports(example(), peers.ports)
    if not HAS_AI:
        del router(config, "/chat")["ai_policy"]
        del config["ai"]
    return config


@pytest.fixture
async def peers() -> AsyncIterator[Peers]:
    async with AsyncExitStack() as stack:
        yield await start_peers(stack)


async def serve(path: Path, peers: Peers) -> GatewayProcess:
    """`kairos serve --config PATH` on a free port, the model endpoint and key in its environment."""
    env = {"OPENAI_API_KEY": "test-key", "OPENAI_BASE_URL": peers.model_url}
    return await GatewayProcess(
        ["--config", str(path), "--port", "0", "--admin", "off"], env=env
    ).start()


@pytest.mark.parametrize("form", ["seed", "migrated"])
async def test_seed_example_served_end_to_end(form: str, peers: Peers, tmp_path: Path) -> None:
    path = write(tmp_path, seed_copy(peers))
    if form == "migrated":
        result = CliRunner().invoke(
            cli, ["config", "migrate", str(path), "-o", str(tmp_path / "gw.yaml")]
        )
        assert result.exit_code == 0, result.output
        path = tmp_path / "gw.yaml"
    gateway = await serve(path, peers)
    try:
        async with aiohttp.ClientSession() as http:
            await check_jwt_and_transform(gateway.url, http, peers)
            await check_weighted_balancing(gateway.url, http, peers)
            await check_legacy_and_websocket_routes(gateway.url, http, peers)
            if HAS_AI:
                await check_ai_route(gateway.url, http, peers)
        await check_rate_limit(gateway.url)
        await check_reload(gateway)
    finally:
        await gateway.stop()
    logged = "".join(gateway.stderr_lines)
    if form == "seed":  # kairos serve logs the conversion warnings
        assert logged.count("config: ") == 2 * (3 if HAS_AI else 2)  # at start and on reload
        assert logged.count("jwt.secret: the secret is written") == 2
        assert logged.count("routers[0].backends[1]: no health_check_path") == 2
    else:  # the migrated file is plain native config: nothing left to warn about
        assert "config: " not in logged


async def check_jwt_and_transform(url: str, http: aiohttp.ClientSession, peers: Peers) -> None:
    """auth_required routes need a valid token; the request and response transformations apply."""
    async with http.get(f"{url}/api/users/42") as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    forged = token(secret="x" * 48)
    async with http.get(f"{url}/api/users/42", headers={"Authorization": f"Bearer {forged}"}) as r:
        assert r.status == 401
    wrong_audience = token({"aud": "someone-else"})
    async with http.get(f"{url}/api/users/42", headers=_bearer(wrong_audience)) as response:
        assert response.status == 401
    async with http.get(f"{url}/api/users/42", headers=_bearer(token())) as response:
        assert response.status == 200
        assert response.headers["Server"] == "kairos"  # the backend's own Server header removed
        body = await response.json()
    assert body["path"] == "/v2/user/42"  # internal_path, then the regex path rewrite
    assert body["headers"]["X-Gateway"] == "kairos"
    headers = {**_bearer(token()), "X-Echo-Status": "404"}
    async with http.put(f"{url}/api/users/7", headers=headers) as response:
        assert response.status == 200  # status_code_mappings 404 -> 200
    async with http.post(f"{url}/api/users/7", headers=_bearer(token())) as response:
        assert response.status == 405


async def check_weighted_balancing(url: str, http: aiohttp.ClientSession, peers: Peers) -> None:
    """weight 2 and weight 1 backends share a route's requests 2:1, interleaved."""
    before = Counter({port: len(peers.paths(port, "/v2/user/")) for port in (9001, 9002)})
    for n in range(9):
        async with http.get(f"{url}/api/users/{n}", headers=_bearer(token())) as response:
            assert response.status == 200
    after = Counter({port: len(peers.paths(port, "/v2/user/")) for port in (9001, 9002)})
    assert after - before == Counter({9001: 6, 9002: 3})


async def check_legacy_and_websocket_routes(
    url: str, http: aiohttp.ClientSession, peers: Peers
) -> None:
    """The legacy host+port route and the websocket route; http routes do not upgrade."""
    async with http.get(f"{url}/legacy/status") as response:
        assert response.status == 200
        assert (await response.json())["path"] == "/status"
    async with http.ws_connect(f"{url}/ws/chat") as socket:
        await socket.send_str("hello")
        assert await socket.receive_str(timeout=5) == "hello"
    assert peers.ws.paths[-1] == "/ws"
    with pytest.raises(aiohttp.WSServerHandshakeError):
        async with http.ws_connect(f"{url}/legacy/status"):
            pass


async def check_ai_route(url: str, http: aiohttp.ClientSession, peers: Peers) -> None:
    """The model reads the request's content and picks the backend."""
    payload = {"prompt": "summarise this contract"}
    async with http.post(f"{url}/chat", json=payload) as response:
        assert response.status == 200
        assert (await response.json())["backend"] == "b9004"  # the model's pick, not the fallback
    assert peers.model.calls[-1]["model"] == "gpt-4o-mini"
    assert "summarise this contract" in peers.model.calls[-1]["messages"][1]["content"]


async def check_rate_limit(url: str) -> None:
    """120 requests (100 + burst 20) per client IP in 60 s, then 429 with Retry-After."""
    connector = aiohttp.TCPConnector(local_addr=(RATE_LIMITED_CLIENT, 0))
    async with aiohttp.ClientSession(connector=connector) as http:
        statuses = []
        for _ in range(120):
            async with http.get(f"{url}/legacy/status") as response:
                statuses.append(response.status)
        assert statuses == [200] * 120
        refused = None
        for _ in range(3):  # a window edge may discount the previous window a hair
            async with http.get(f"{url}/legacy/status") as response:
                if response.status == 429:
                    refused = response
                    break
        assert refused is not None and int(refused.headers["Retry-After"]) > 0


async def check_reload(gateway: GatewayProcess) -> None:
    """SIGHUP reloads the file (converted again when it is a seed file)."""
    gateway.signal(signal.SIGHUP)
    async with asyncio.timeout(10):
        while not any("configuration reloaded" in line for line in gateway.stderr_lines):
            await asyncio.sleep(0.05)
    assert not any("reload failed" in line for line in gateway.stderr_lines)


def _bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


@pytest.mark.redis
async def test_seed_rate_limit_in_redis_per_ip_and_route(
    peers: Peers, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "k")  # read by the ai balancer when it is built
    config = seed_copy(peers)
    prefix = f"seedtest-{uuid.uuid4().hex[:8]}"
    config["rate_limit"].update(
        strategy="PerIPAndRoute",
        window_type="TokenBucket",
        requests_per_window=3,
        burst_allowance=1,
        enable_redis=True,
        redis_key_prefix=prefix,
    )
    env = {"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": peers.model_url, "KAIROS_REDIS_URL": redis_url}
    loaded = load_config_text(json.dumps(config), "seed.json", env)
    loaded = apply_overrides(loaded, ServeOptions(port=0, admin="off"))
    client = aioredis.from_url(redis_url)
    try:
        async with running_gateway(loaded) as gateway, aiohttp.ClientSession() as http:
            statuses = []
            for _ in range(5):
                async with http.get(f"{gateway.url}/legacy/status") as response:
                    statuses.append(response.status)
            assert statuses == [200, 200, 200, 200, 429]
            async with http.get(f"{gateway.url}/api/users/1", headers=_bearer(token())) as response:
                assert response.status == 200  # another route, another budget
            keys = [key async for key in client.scan_iter(f"{prefix}:*")]
            assert keys, "the counters live in Redis under the seed's key prefix"
    finally:
        async for key in client.scan_iter(f"{prefix}:*"):
            await client.delete(key)
        await client.aclose()


@pytest.mark.skipif(not HAS_AI, reason="kairos-ai not installed")
async def test_ai_fallback_backend_index_when_the_model_is_down(
    peers: Peers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    config = seed_copy(peers)
    router(config, "/chat")["ai_policy"]["fallback_backend_index"] = 1
    env = {"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}  # nothing listens
    loaded = apply_overrides(
        load_config_text(json.dumps(config), "seed.json", env), ServeOptions(port=0, admin="off")
    )
    async with running_gateway(loaded) as gateway, aiohttp.ClientSession() as http:
        for _ in range(3):
            async with http.post(f"{gateway.url}/chat", json={"prompt": "hi"}) as response:
                assert response.status == 200
                assert (await response.json())["backend"] == "b9004"  # backend index 1


async def test_admin_validate_accepts_seed_text(
    peers: Peers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    text = json.dumps(seed_copy(peers), indent=2)
    native = {"routes": [{"path": "/", "upstream": {"backends": [{"url": peers.http[9006].url}]}}]}
    async with running_gateway(native) as gateway, aiohttp.ClientSession() as http:
        async with http.post(f"{gateway.admin_url}/config/validate", data=text) as response:
            result = await response.json()
        assert result["valid"] is True
        assert any("jwt.secret" in warning for warning in result["warnings"])
        bad = text.replace('"auth_required": false', '"auth_requried": false', 1)
        async with http.post(f"{gateway.admin_url}/config/validate", data=bad) as response:
            result = await response.json()
        assert result["valid"] is False
        assert result["problems"][0]["loc"] == "routers[1].auth_requried"
        assert "unknown field in the seed config.json format" in result["problems"][0]["message"]
