"""register_authenticators through a real gateway: any method may accept, consumers, scopes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from kairos_core import (
    AuthFailure,
    AuthPlugin,
    BuildContext,
    Consumer,
    Handler,
    Middleware,
    NoConfig,
    Phase,
    RequestContext,
    Response,
    StagePlugin,
    hookimpl,
)
from kairos_core.config import ConfigError


class KeysConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keys: dict[str, str]
    """API key -> consumer name."""


class KeyAuthenticator:
    """Accepts `X-Key: <key>` for the configured keys."""

    challenge = "Key"

    def __init__(self, keys: dict[str, Consumer]) -> None:
        self.keys = keys

    async def authenticate(self, ctx: RequestContext) -> Consumer | None:
        key = ctx.headers.get("X-Key")
        if key is None:
            return None
        consumer = self.keys.get(key)
        if consumer is None:
            raise AuthFailure("invalid key")
        return consumer


class RefusingBearer:
    """Refuses every bearer token with 403 (to see which failure wins)."""

    challenge = "Bearer"
    gateway_headers = ("X-Token-Sub",)
    """What a real bearer method would forward; the core strips it from every request."""

    async def authenticate(self, ctx: RequestContext) -> Consumer | None:
        if "Authorization" not in ctx.headers:
            return None
        raise AuthFailure("token revoked", status=403, error_type="forbidden")


class PlanConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plan: str


class AuthProbe:
    """Registers two authenticators, a post-auth transformer and a pre-auth stage."""

    @hookimpl
    def register_authenticators(self, register: Callable[[AuthPlugin[Any]], None]) -> None:
        def build_keys(config: KeysConfig, context: BuildContext) -> KeyAuthenticator:
            known = context.services.consumers
            return KeyAuthenticator(
                {k: known.get(n) or Consumer(n, configured=False) for k, n in config.keys.items()}
            )

        def build_bearer(config: NoConfig, context: BuildContext) -> RefusingBearer:
            return RefusingBearer()

        register(AuthPlugin(name="keys", build=build_keys, config_model=KeysConfig, priority=10))
        register(AuthPlugin(name="bearer", build=build_bearer))

    @hookimpl
    def register_transformers(self, register: Callable[[StagePlugin[Any]], None]) -> None:
        def build(config: PlanConfig, context: BuildContext) -> Middleware:
            async def plan(ctx: RequestContext, call_next: Handler) -> Response:
                ctx.headers["X-Plan"] = config.plan
                ctx.headers["X-Seen-Consumer"] = ctx.consumer.name if ctx.consumer else "-"
                return await call_next(ctx)

            return plan

        register(StagePlugin(name="plan", build=build, config_model=PlanConfig))

    @hookimpl
    def register_rate_limiters(self, register: Callable[[StagePlugin[Any]], None]) -> None:
        async def early(ctx: RequestContext, call_next: Handler) -> Response:
            return await call_next(ctx)

        register(StagePlugin(name="per-ip", build=lambda c, b: early, phase=Phase.PRE_AUTH))


def gateway_config(backend_url: str, **extra: Any) -> dict[str, Any]:
    """A route accepting `keys` or `bearer`, with a route-level `plan` transformer."""
    return {
        "consumers": [
            {"name": "alice", "plugins": [{"name": "plan", "config": {"plan": "gold"}}]},
            {"name": "bob"},
        ],
        "routes": [
            {
                "prefix": "/",
                "upstream": {"backends": [{"url": backend_url}]},
                "plugins": [
                    {"name": "keys", "config": {"keys": {"k-alice": "alice", "k-bob": "bob"}}},
                    {"name": "bearer"},
                    {"name": "plan", "config": {"plan": "basic"}},
                ],
            }
        ],
        **extra,
    }


async def test_no_credential_is_401_with_every_challenge(kairos_gateway, echo_backend, http):
    gw = await kairos_gateway(gateway_config(echo_backend.url), plugins=[AuthProbe()])
    async with http.get(gw.url + "/") as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"] == "Key, Bearer"
        assert (await response.json())["message"] == "authentication required"
    assert echo_backend.records == []


async def test_accepted_key_sends_the_consumer_upstream(kairos_gateway, echo_backend, http):
    gw = await kairos_gateway(gateway_config(echo_backend.url), plugins=[AuthProbe()])
    headers = {"X-Key": "k-bob", "X-Consumer": "admin"}  # a client cannot claim a consumer
    async with http.get(gw.url + "/", headers=headers) as response:
        assert response.status == 200
        seen = (await response.json())["headers"]
    assert seen["X-Consumer"] == "bob"
    assert seen["X-Seen-Consumer"] == "bob"
    assert seen["X-Plan"] == "basic"


async def test_consumer_settings_replace_the_route_entry(kairos_gateway, echo_backend, http):
    gw = await kairos_gateway(gateway_config(echo_backend.url), plugins=[AuthProbe()])
    async with http.get(gw.url + "/", headers={"X-Key": "k-alice"}) as response:
        assert (await response.json())["headers"]["X-Plan"] == "gold"


async def test_first_refusal_wins_when_nobody_accepts(kairos_gateway, echo_backend, http):
    gw = await kairos_gateway(gateway_config(echo_backend.url), plugins=[AuthProbe()])
    async with http.get(gw.url + "/", headers={"X-Key": "nope"}) as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"] == "Key, Bearer"
        assert (await response.json())["message"] == "invalid key"
    async with http.get(gw.url + "/", headers={"Authorization": "Bearer x"}) as response:
        assert response.status == 403
        assert (await response.json())["type"] == "forbidden"
    headers = {"Authorization": "Bearer x", "X-Key": "k-bob"}  # another method accepts
    async with http.get(gw.url + "/", headers=headers) as response:
        assert response.status == 200
    assert len(echo_backend.records) == 1


async def test_pre_auth_plugin_cannot_be_set_per_consumer(kairos_gateway, echo_backend):
    config = gateway_config(echo_backend.url)
    config["consumers"][1]["plugins"] = [{"name": "per-ip"}]
    with pytest.raises(ConfigError, match="runs before authentication"):
        await kairos_gateway(config, plugins=[AuthProbe()])


async def test_gateway_headers_are_stripped_even_when_another_method_accepts(
    kairos_gateway, echo_backend, http
):
    gw = await kairos_gateway(gateway_config(echo_backend.url), plugins=[AuthProbe()])
    headers = {"X-Key": "k-bob", "X-Token-Sub": "admin"}  # keys accepts; bearer never runs
    async with http.get(gw.url + "/", headers=headers) as response:
        assert response.status == 200
        seen = (await response.json())["headers"]
    assert "X-Token-Sub" not in seen
    assert seen["X-Consumer"] == "bob"
