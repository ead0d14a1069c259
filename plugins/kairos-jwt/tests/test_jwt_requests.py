"""Token sources, forwarded claims, rules, consumers and the cache, through a real gateway."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from kairos_jwt import JwtConfig, JwtPlugin, TokenRejected, TokenVerifier, build_keyring, errors
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


def plugin(kit: Any, **extra: Any) -> dict[str, Any]:
    config = {"keys": [{"secret": kit.secret.decode()}], **extra}
    return {"name": "jwt", "config": config}


class TagConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tier: str = "free"


class TagStage:
    """A post-auth test stage: sends its configured tier, the consumer and a claim upstream."""

    @staticmethod
    def build(config: TagConfig, context: BuildContext) -> Middleware:
        tier = config.tier

        async def tag(ctx: RequestContext, call_next: Handler) -> Response:
            ctx.headers["X-Tier"] = tier
            if ctx.consumer is not None:
                ctx.headers["X-Seen-Consumer"] = json.dumps(
                    [ctx.consumer.name, dict(ctx.consumer.metadata), ctx.consumer.configured]
                )
            if ctx.claims is not None:
                ctx.headers["X-Seen-Sub"] = str(ctx.claims.get("sub"))
            return await call_next(ctx)

        return tag

    @hookimpl
    def register_transformers(self, register: Callable[[StagePlugin[Any]], None]) -> None:
        register(StagePlugin(name="tag", build=self.build, config_model=TagConfig))


async def get(http: Any, url: str, **kwargs: Any) -> tuple[int, dict[str, Any], Any]:
    async with http.get(url, **kwargs) as response:
        return response.status, await response.json(), response.headers


async def test_missing_token_gets_401_with_a_bare_challenge(
    kairos_gateway: Any, echo_backend: Any, route_to: Any, http: Any, jwt_kit: Any
) -> None:
    gw = await kairos_gateway(
        {"routes": [route_to(echo_backend.url, [plugin(jwt_kit, realm="api")])]}
    )
    for headers in ({}, {"Authorization": "Basic dXNlcjpwYXNz"}):
        status, body, response_headers = await get(http, gw.url + "/", headers=headers)
        assert status == 401
        assert body["message"] == "authentication required"
        assert response_headers["WWW-Authenticate"] == 'Bearer realm="api"'
    status, body, response_headers = await get(
        http, gw.url + "/", headers={"Authorization": "Bearer "}
    )
    assert (status, body["message"]) == (401, "malformed token: empty bearer credential")
    assert echo_backend.records == []


@pytest.mark.parametrize(
    ("source", "place"),
    [
        ({"source": "header", "name": "X-Token"}, "header"),
        ({"source": "cookie", "name": "session"}, "cookie"),
        ({"source": "query", "name": "access_token"}, "query"),
        ({"source": "bearer", "name": "X-Alt-Authorization"}, "alt-bearer"),
    ],
)
@pytest.mark.parametrize("strip", [False, True])
async def test_token_sources_and_stripping(
    kairos_gateway: Any,
    echo_backend: Any,
    route_to: Any,
    http: Any,
    jwt_kit: Any,
    source: dict[str, str],
    place: str,
    strip: bool,
) -> None:
    config = plugin(jwt_kit, token_sources=["bearer", source], strip_credential=strip)
    gw = await kairos_gateway({"routes": [route_to(echo_backend.url, [config])]})
    token = jwt_kit.mint()
    url = gw.url + "/p?keep=1"
    headers = {"Cookie": "theme=dark"}
    if place == "header":
        headers["X-Token"] = token
    elif place == "cookie":
        headers["Cookie"] = f"theme=dark; session={token}; lang=en"
    elif place == "query":
        url += f"&access_token={token}"
    else:
        headers["X-Alt-Authorization"] = f"Bearer {token}"
    status, body, _ = await get(http, url, headers=headers)
    assert status == 200, body
    sent = json.dumps(body)
    assert (token in sent) is not strip
    assert body["headers"]["X-Consumer"] == "alice"
    assert "keep=1" in body["raw_path"]
    assert "theme=dark" in body["headers"]["Cookie"]
    if place == "cookie":
        assert "lang=en" in body["headers"]["Cookie"]


async def test_bearer_is_tried_first_and_strip_removes_authorization(
    kairos_gateway: Any, echo_backend: Any, route_to: Any, http: Any, jwt_kit: Any
) -> None:
    gw = await kairos_gateway(
        {"routes": [route_to(echo_backend.url, [plugin(jwt_kit, strip_credential=True)])]}
    )
    status, body, _ = await get(
        http, gw.url + "/", headers={"Authorization": f"Bearer {jwt_kit.mint()}"}
    )
    assert status == 200
    assert "Authorization" not in body["headers"]


async def test_forward_claims_and_spoofed_headers_are_replaced(
    kairos_gateway: Any, echo_backend: Any, route_to: Any, http: Any, jwt_kit: Any
) -> None:
    config = plugin(
        jwt_kit,
        forward_claims={
            "sub": "X-User",
            "scope": "X-Scope",
            "roles": "X-Roles",
            "tenant": "X-Tenant",
        },
    )
    gw = await kairos_gateway({"routes": [route_to(echo_backend.url, [config])]})
    token = jwt_kit.mint(scope="read write", roles=["admin", "dev"], email="a@x")
    spoofed = {"X-User": "mallory", "X-Tenant": "evil", "X-Consumer": "mallory"}
    status, body, _ = await get(
        http, gw.url + "/", headers={"Authorization": f"Bearer {token}", **spoofed}
    )
    assert status == 200
    sent = body["headers"]
    assert sent["X-User"] == "alice"
    assert sent["X-Scope"] == "read write"
    assert json.loads(sent["X-Roles"]) == ["admin", "dev"]
    assert "X-Tenant" not in sent  # claim absent: the spoofed header is removed, not passed on
    assert sent["X-Consumer"] == "alice"
    # Claims with line breaks cannot split headers: they are sent JSON-encoded.
    tricky = jwt_kit.mint(tenant="acme\r\nX-Injected: 1")
    status, body, _ = await get(http, gw.url + "/", headers={"Authorization": f"Bearer {tricky}"})
    assert status == 200
    assert body["headers"]["X-Tenant"] == '"acme\\r\\nX-Injected: 1"'
    assert "X-Injected" not in body["headers"]
    # ...and a consumer name with control characters is refused outright.
    bad_sub = jwt_kit.mint(sub="bob\r\nX-Injected: 1")
    status, body, _ = await get(http, gw.url + "/", headers={"Authorization": f"Bearer {bad_sub}"})
    assert (status, body["message"]) == (
        401,
        "token lacks a usable sub claim to identify the consumer",
    )


@pytest.mark.parametrize(
    ("rule", "claims", "allowed"),
    [
        ({"claim": "scope", "contains": "read:users"}, {"scope": "openid read:users"}, True),
        ({"claim": "scope", "contains": "read:users"}, {"scope": "openid write:users"}, False),
        ({"claim": "scope", "contains": "read:users"}, {}, False),
        ({"claim": "scp", "contains": "read"}, {"scp": ["read", "write"]}, True),
        ({"claim": "role", "one_of": ["admin", "editor"]}, {"role": "editor"}, True),
        ({"claim": "role", "one_of": ["admin", "editor"]}, {"role": "viewer"}, False),
        ({"claim": "email_verified", "equals": True}, {"email_verified": True}, True),
        ({"claim": "email_verified", "equals": True}, {"email_verified": "true"}, False),
        ({"claim": "realm.roles", "contains_any": ["a", "b"]}, {"realm": {"roles": ["b"]}}, True),
        ({"claim": "realm.roles", "contains_all": ["a", "b"]}, {"realm": {"roles": ["b"]}}, False),
    ],
)
async def test_rules_give_403(
    kairos_gateway: Any,
    echo_backend: Any,
    route_to: Any,
    http: Any,
    jwt_kit: Any,
    rule: dict[str, Any],
    claims: dict[str, Any],
    allowed: bool,
) -> None:
    gw = await kairos_gateway(
        {"routes": [route_to(echo_backend.url, [plugin(jwt_kit, rules=[rule])])]}
    )
    token = jwt_kit.mint(**claims)
    status, body, headers = await get(
        http, gw.url + "/", headers={"Authorization": f"Bearer {token}"}
    )
    if allowed:
        assert status == 200
        return
    assert status == 403
    assert body["type"] == "forbidden"
    assert body["message"].startswith("token does not satisfy the rule: " + rule["claim"])
    assert "WWW-Authenticate" not in headers


async def test_rules_are_per_route(
    kairos_gateway: Any, echo_backend: Any, http: Any, jwt_kit: Any
) -> None:
    def route(prefix: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "prefix": prefix,
            "upstream": {"backends": [{"url": echo_backend.url}]},
            "plugins": [plugin(jwt_kit, rules=rules)],
        }

    gw = await kairos_gateway(
        {
            "routes": [
                route("/admin", [{"claim": "role", "equals": "admin"}]),
                route("/public", []),
            ]
        }
    )
    token = {"Authorization": f"Bearer {jwt_kit.mint(role='dev')}"}
    assert (await get(http, gw.url + "/admin", headers=token))[0] == 403
    assert (await get(http, gw.url + "/public", headers=token))[0] == 200


async def test_consumers_and_per_consumer_plugin_config(
    kairos_gateway: Any, echo_backend: Any, route_to: Any, http: Any, jwt_kit: Any
) -> None:
    config = {
        "consumers": [
            {
                "name": "alice",
                "metadata": {"plan": "gold"},
                "plugins": [{"name": "tag", "config": {"tier": "gold"}}],
            },
            {"name": "svc-42", "metadata": {"team": "billing"}},
        ],
        "routes": [
            route_to(
                echo_backend.url,
                [plugin(jwt_kit, consumer_claim="client_id"), {"name": "tag", "config": {}}],
            )
        ],
    }
    gw = await kairos_gateway(config, plugins=[TagStage()])

    async def as_client(client_id: str) -> dict[str, str]:
        token = jwt_kit.mint(client_id=client_id)
        status, body, _ = await get(
            http, gw.url + "/", headers={"Authorization": f"Bearer {token}"}
        )
        assert status == 200
        return dict(body["headers"])

    alice = await as_client("alice")
    assert alice["X-Tier"] == "gold"
    assert json.loads(alice["X-Seen-Consumer"]) == ["alice", {"plan": "gold"}, True]
    assert alice["X-Seen-Sub"] == "alice"
    svc = await as_client("svc-42")
    assert svc["X-Tier"] == "free"
    assert json.loads(svc["X-Seen-Consumer"]) == ["svc-42", {"team": "billing"}, True]
    stranger = await as_client("carol")
    assert stranger["X-Tier"] == "free"
    assert json.loads(stranger["X-Seen-Consumer"]) == ["carol", {}, False]
    assert stranger["X-Consumer"] == "carol"
    status, body, _ = await get(
        http, gw.url + "/", headers={"Authorization": f"Bearer {jwt_kit.mint()}"}
    )
    assert (status, body["message"]) == (
        401,
        "token lacks a usable client_id claim to identify the consumer",
    )


async def test_require_configured_consumer(
    kairos_gateway: Any, echo_backend: Any, route_to: Any, http: Any, jwt_kit: Any
) -> None:
    gw = await kairos_gateway(
        {
            "consumers": [{"name": "alice"}],
            "routes": [
                route_to(echo_backend.url, [plugin(jwt_kit, require_configured_consumer=True)])
            ],
        }
    )
    for sub, expected in (("alice", 200), ("bob", 403)):
        token = jwt_kit.mint(sub=sub)
        status, body, _ = await get(
            http, gw.url + "/", headers={"Authorization": f"Bearer {token}"}
        )
        assert status == expected
    assert body["message"] == "token does not belong to a known consumer"


def make_verifier(kit: Any, clock: Callable[[], float], **extra: Any) -> TokenVerifier:
    config = JwtConfig.model_validate(plugin(kit, **extra)["config"])
    return TokenVerifier(config, build_keyring(config, None), {}, clock)


def test_cache_hits_and_never_outlives_exp(jwt_kit: Any) -> None:
    now = [1_000_000.0]
    verifier = make_verifier(jwt_kit, lambda: now[0], leeway=30)
    token = jwt_kit.mint(iat=int(now[0]), exp=int(now[0]) + 10)
    first = verifier.verify(token)
    assert verifier.verify(token) is first  # served from the cache
    now[0] += 9.5
    assert verifier.verify(token) is first
    now[0] += 0.5  # exactly exp: the cache entry is dropped; leeway still accepts it cold
    again = verifier.verify(token)
    assert again is not first
    assert verifier.verify(token) is not again  # past exp: never cached again
    now[0] += 30
    with pytest.raises(TokenRejected) as caught:
        verifier.verify(token)
    assert caught.value.reason == errors.EXPIRED


def test_cache_never_outlives_max_age(jwt_kit: Any) -> None:
    now = [1_200_000.0]
    verifier = make_verifier(jwt_kit, lambda: now[0], max_age=60, leeway=5)
    token = jwt_kit.mint(iat=int(now[0]), exp=int(now[0]) + 3600)
    first = verifier.verify(token)
    now[0] += 59
    assert verifier.verify(token) is first  # cached (the ttl of 300 s would allow more)
    now[0] += 1  # iat + max_age: the entry is dropped; the leeway still accepts it cold
    again = verifier.verify(token)
    assert again is not first
    assert verifier.verify(token) is not again  # within leeway only: not cached again
    now[0] += 6
    with pytest.raises(TokenRejected) as caught:
        verifier.verify(token)
    assert caught.value.reason == errors.TOO_OLD


def test_token_valid_only_by_nbf_leeway_is_not_cached(jwt_kit: Any) -> None:
    now = [1_300_000.0]
    verifier = make_verifier(jwt_kit, lambda: now[0], leeway=10)
    token = jwt_kit.mint(iat=int(now[0]), nbf=int(now[0]) + 5, exp=int(now[0]) + 3600)
    assert verifier.cache is not None
    assert verifier.verify(token) is not verifier.verify(token)
    assert len(verifier.cache) == 0
    now[0] += 6  # nbf has passed: from now on the verification is reused
    first = verifier.verify(token)
    assert verifier.verify(token) is first


async def test_reload_without_a_key_rejects_its_cached_tokens(
    kairos_gateway: Any, echo_backend: Any, route_to: Any, http: Any, jwt_kit: Any
) -> None:
    other = "another-secret-0123456789abcdef-0123456789abcdef"
    config = {"routes": [route_to(echo_backend.url, [plugin(jwt_kit)])]}
    gw = await kairos_gateway(config)
    old = {"Authorization": "Bearer " + jwt_kit.mint()}
    for _ in range(2):  # verified, then served from the cache
        assert (await get(http, gw.url + "/", headers=old))[0] == 200
    rotated = {"name": "jwt", "config": {"keys": [{"secret": other}]}}
    await gw.reload({"routes": [route_to(echo_backend.url, [rotated])]})
    status, body, _ = await get(http, gw.url + "/", headers=old)
    assert (status, body["message"]) == (401, "signature verification failed")
    new = {"Authorization": "Bearer " + jwt_kit.mint(other.encode())}
    assert (await get(http, gw.url + "/", headers=new))[0] == 200


def test_cache_is_bounded_and_respects_ttl(jwt_kit: Any) -> None:
    now = [2_000_000.0]
    verifier = make_verifier(jwt_kit, lambda: now[0], cache={"max_entries": 3, "ttl": 5})
    tokens = [jwt_kit.mint(iat=int(now[0]), exp=int(now[0]) + 3600, jti=str(i)) for i in range(5)]
    for token in tokens:
        verifier.verify(token)
    assert verifier.cache is not None
    assert len(verifier.cache) == 3
    kept = verifier.verify(tokens[-1])
    assert verifier.verify(tokens[-1]) is kept
    now[0] += 5
    assert verifier.verify(tokens[-1]) is not kept


def test_cache_off_and_failures_not_cached(jwt_kit: Any) -> None:
    now = [3_000_000.0]
    off = make_verifier(jwt_kit, lambda: now[0], cache={"max_entries": 0})
    token = jwt_kit.mint(iat=int(now[0]), exp=int(now[0]) + 60)
    assert off.cache is None
    assert off.verify(token) is not off.verify(token)
    ruled = make_verifier(jwt_kit, lambda: now[0], rules=[{"claim": "role", "equals": "x"}])
    for _ in range(2):
        with pytest.raises(TokenRejected):
            ruled.verify(token)
    assert ruled.cache is not None
    assert len(ruled.cache) == 0


async def test_frozen_clock_plugin_controls_expiry_end_to_end(
    kairos_gateway: Any, echo_backend: Any, route_to: Any, http: Any, jwt_kit: Any
) -> None:
    now = [1_500_000_000.0]
    gw = await kairos_gateway(
        {"routes": [route_to(echo_backend.url, [plugin(jwt_kit)])]},
        plugins=[JwtPlugin(clock=lambda: now[0])],
    )
    token = {"Authorization": "Bearer " + jwt_kit.mint(iat=int(now[0]), exp=int(now[0]) + 60)}
    assert (await get(http, gw.url + "/", headers=token))[0] == 200
    now[0] += 61
    status, body, _ = await get(http, gw.url + "/", headers=token)
    assert (status, body["message"]) == (401, "token expired")
