"""API keys through a real gateway: hashed storage, header vs query, wrong keys, consumers."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from kairos_apikey import hash_key
from pydantic import BaseModel, ConfigDict

from kairos_core import (
    BuildContext,
    Handler,
    Middleware,
    RequestContext,
    Response,
    StagePlugin,
    hookimpl,
)
from kairos_core.config.errors import ConfigError

ALICE_KEY = "kk_alice-0123456789-abcdefghijklmnop"
BOB_KEY = "kk_bob-0123456789-abcdefghijklmnopqrs"


class TierConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tier: str = "free"


class TierStage:
    """A post-auth test stage: sends its configured tier and the consumer's metadata upstream."""

    @staticmethod
    def build(config: TierConfig, context: BuildContext) -> Middleware:
        async def stage(ctx: RequestContext, call_next: Handler) -> Response:
            ctx.headers["X-Tier"] = config.tier
            if ctx.consumer is not None:
                ctx.headers["X-Metadata"] = json.dumps(dict(ctx.consumer.metadata))
            return await call_next(ctx)

        return stage

    @hookimpl
    def register_transformers(self, register: Callable[[StagePlugin[Any]], None]) -> None:
        register(StagePlugin(name="tier", build=self.build, config_model=TierConfig))


def gateway_config(url: str, **apikey: Any) -> dict[str, Any]:
    settings = {
        "keys": [
            {"consumer": "alice", "hash": hash_key(ALICE_KEY), "label": "alice laptop"},
            {"consumer": "bob", "hash": hash_key(BOB_KEY).removeprefix("sha256:").upper()},
        ],
        **apikey,
    }
    return {
        "consumers": [
            {"name": "alice", "metadata": {"plan": "gold"}},
            {"name": "bob", "plugins": [{"name": "tier", "config": {"tier": "partner"}}]},
        ],
        "routes": [
            {
                "prefix": "/",
                "upstream": {"backends": [{"url": url}]},
                "plugins": [{"name": "apikey", "config": settings}, {"name": "tier"}],
            }
        ],
    }


async def get(http: Any, url: str, **kwargs: Any) -> tuple[int, dict[str, Any], Any]:
    async with http.get(url, **kwargs) as response:
        return response.status, await response.json(), response.headers


async def test_header_key_maps_to_consumer(
    kairos_gateway: Any, echo_backend: Any, http: Any
) -> None:
    gw = await kairos_gateway(gateway_config(echo_backend.url), plugins=[TierStage()])
    status, body, _ = await get(http, gw.url + "/a", headers={"X-API-Key": ALICE_KEY})
    assert status == 200
    sent = body["headers"]
    assert sent["X-Consumer"] == "alice"
    assert json.loads(sent["X-Metadata"]) == {"plan": "gold"}
    assert sent["X-Tier"] == "free"
    assert "X-API-Key" not in sent  # stripped by default
    status, body, _ = await get(http, gw.url + "/a", headers={"X-API-Key": BOB_KEY})
    assert status == 200
    assert body["headers"]["X-Consumer"] == "bob"
    assert body["headers"]["X-Tier"] == "partner"  # bob's own plugin config wins


@pytest.mark.parametrize(
    "presented",
    [
        "kk_alice-0123456789-abcdefghijklmnoq",
        "x" + ALICE_KEY,
        ALICE_KEY.upper(),
        hash_key(ALICE_KEY),
        hash_key(ALICE_KEY).removeprefix("sha256:"),
        "x" * 5000,
    ],
    ids=["one-char-off", "extra-leading-char", "upper-case", "the-hash", "bare-hash", "huge"],
)
async def test_wrong_key_gets_401(
    kairos_gateway: Any, echo_backend: Any, http: Any, presented: str
) -> None:
    gw = await kairos_gateway(gateway_config(echo_backend.url), plugins=[TierStage()])
    status, body, headers = await get(http, gw.url + "/a", headers={"X-API-Key": presented})
    assert status == 401
    assert body["type"] == "invalid_api_key"
    assert body["message"] == "invalid API key"
    assert headers["WWW-Authenticate"] == 'ApiKey realm="kairos", header="X-API-Key"'
    assert echo_backend.records == []


async def test_missing_key_gets_401(kairos_gateway: Any, echo_backend: Any, http: Any) -> None:
    gw = await kairos_gateway(gateway_config(echo_backend.url), plugins=[TierStage()])
    for headers in ({}, {"X-API-Key": ""}):
        status, body, response_headers = await get(http, gw.url + "/a", headers=headers)
        assert (status, body["message"]) == (401, "authentication required")
        assert response_headers["WWW-Authenticate"] == 'ApiKey realm="kairos", header="X-API-Key"'


async def test_query_parameter_vs_header(kairos_gateway: Any, echo_backend: Any, http: Any) -> None:
    config = gateway_config(echo_backend.url, header="X-Key", query="api_key")
    gw = await kairos_gateway(config, plugins=[TierStage()])
    status, body, _ = await get(http, f"{gw.url}/q?api_key={BOB_KEY}&page=2")
    assert status == 200
    assert body["headers"]["X-Consumer"] == "bob"
    assert body["raw_path"] == "/q?page=2"  # the key is not forwarded
    # The header wins over the query parameter when both are present.
    status, body, _ = await get(http, f"{gw.url}/q?api_key={BOB_KEY}", headers={"X-Key": ALICE_KEY})
    assert body["headers"]["X-Consumer"] == "alice"
    assert "api_key" not in body["raw_path"]
    assert "X-Key" not in body["headers"]
    status, body, _ = await get(http, f"{gw.url}/q?api_key=wrong")
    assert (status, body["message"]) == (401, "invalid API key")
    query_only = gateway_config(echo_backend.url, header=None, query="api_key")
    gw2 = await kairos_gateway(query_only, plugins=[TierStage()])
    status, _, headers = await get(http, f"{gw2.url}/q", headers={"X-API-Key": ALICE_KEY})
    assert status == 401
    assert headers["WWW-Authenticate"] == 'ApiKey realm="kairos", query="api_key"'


async def test_strip_credential_off_forwards_the_key(
    kairos_gateway: Any, echo_backend: Any, http: Any
) -> None:
    config = gateway_config(echo_backend.url, strip_credential=False, query="k")
    gw = await kairos_gateway(config, plugins=[TierStage()])
    status, body, _ = await get(http, gw.url + "/a", headers={"X-API-Key": ALICE_KEY})
    assert status == 200
    assert body["headers"]["X-API-Key"] == ALICE_KEY
    status, body, _ = await get(http, f"{gw.url}/a?k={ALICE_KEY}")
    assert body["raw_path"] == f"/a?k={ALICE_KEY}"


def test_config_holds_only_hashes() -> None:
    text = json.dumps(gateway_config("http://127.0.0.1:1"))
    assert ALICE_KEY not in text
    assert BOB_KEY not in text


BAD = [
    (
        "plaintext key as hash",
        {"keys": [{"consumer": "alice", "hash": ALICE_KEY}]},
        "not a SHA-256 hash",
    ),
    (
        "unknown consumer",
        {"keys": [{"consumer": "carol", "hash": hash_key("x")}]},
        "keys[0].consumer: no consumer named 'carol' is declared under `consumers` (declared: alice, bob)",
    ),
    (
        "duplicate key",
        {
            "keys": [
                {"consumer": "alice", "hash": hash_key("x")},
                {"consumer": "bob", "hash": hash_key("x")},
            ]
        },
        "keys[1].hash: the same key is listed twice",
    ),
    (
        "nowhere to read",
        {"keys": [{"consumer": "alice", "hash": hash_key("x")}], "header": None},
        "set `header`, `query` or both",
    ),
    ("no keys", {"keys": []}, "keys"),
]


@pytest.mark.parametrize(("what", "settings", "message"), BAD, ids=[b[0] for b in BAD])
async def test_bad_config_names_the_field(
    kairos_gateway: Any, echo_backend: Any, what: str, settings: dict[str, Any], message: str
) -> None:
    config = gateway_config(echo_backend.url)
    config["routes"][0]["plugins"][0]["config"] = settings
    with pytest.raises(ConfigError) as caught:
        await kairos_gateway(config, plugins=[TierStage()])
    text = str(caught.value)
    assert "routes[0].plugins[0].config" in text
    assert message in text
