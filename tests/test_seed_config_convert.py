"""The seed system's config.json is detected and converted on load: mapping, warnings, errors."""

from __future__ import annotations

import importlib.util
import json
from typing import Any

import pytest
from seed_examples import EXAMPLE_PATH, SECRET, example, router

from kairos_core.config import ConfigError, load_config, load_config_text
from kairos_core.config.seed import convert_seed
from kairos_core.config.seed.features import regex_replacement

ENV = {"OPENAI_API_KEY": "test-key"}


def convert(config: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Native data (before interpolation) and warnings for a seed config."""
    converted = convert_seed(config, "seed.json")
    return converted.data, converted.warnings


def load(config: dict[str, Any], env: dict[str, str] | None = None) -> Any:
    """Load seed config text through the real loader (detection, conversion, validation)."""
    return load_config_text(json.dumps(config, indent=2), "seed.json", env or ENV)


def problems(config: dict[str, Any]) -> str:
    """The rendered ConfigError of loading `config`."""
    with pytest.raises(ConfigError) as caught:
        load(config)
    return caught.value.render()


def test_example_converts_route_by_route() -> None:
    loaded = load_config(EXAMPLE_PATH, env=ENV)
    config = loaded.config
    users, chat, legacy, ws = config.routes
    assert [r.name for r in config.routes] == ["api-users-id", "chat", "legacy-status", "ws-chat"]
    assert (users.path, users.rewrite, users.methods) == (
        "/api/users/{id}",
        "/v1/user/{id}",
        ["GET", "PUT"],
    )
    pool = users.upstream
    assert not isinstance(pool, str)
    assert [(b.url, b.weight) for b in pool.backends] == [
        ("http://127.0.0.1:9001", 2),
        ("http://127.0.0.1:9002", 1),
    ]
    assert pool.balancer.name == "weighted_round_robin"
    assert pool.health_check.active is not None and pool.health_check.active.path == "/health"
    assert users.retry is not None
    assert users.retry.max_retries == 3
    assert (users.retry.backoff.initial, users.retry.backoff.max) == (0.1, 5.0)
    assert users.retry.backoff.multiplier == 2.0
    assert users.retry.on_statuses == [502, 503, 504] and users.retry.on_connect_error
    assert [p.name for p in users.plugins] == ["jwt", "transform"]
    assert users.plugins[0].config == {
        "keys": [{"secret": SECRET}],
        "algorithms": ["HS256"],
        "issuer": "kairos-gateway",
        "audience": "api-clients",
        "required_claims": ["exp", "sub"],
    }
    assert users.plugins[1].config == {
        "request": {
            "headers": [{"action": "add", "name": "X-Gateway", "value": "kairos"}],
            "path": {"pattern": "^/v1/(.+)$", "replacement": "/v2/$1"},
        },
        "response": {
            "status": [{"from": 404, "to": 200}],
            "headers": [{"action": "remove", "name": "Server"}],
        },
    }
    assert not users.websocket.enabled and not legacy.websocket.enabled and ws.websocket.enabled
    assert (legacy.rewrite, [b.url for b in legacy.upstream.backends]) == (  # type: ignore[union-attr]
        "/status",
        ["http://127.0.0.1:9006"],
    )
    assert [b.url for b in ws.upstream.backends] == ["ws://127.0.0.1:9005"]  # type: ignore[union-attr]
    assert chat.plugins == [] and legacy.plugins == []
    assert [(p.name, p.config) for p in config.plugins] == [
        (
            "rate-limit",
            {
                "key": ["ip"],
                "limits": [{"algorithm": "sliding_window_counter", "limit": 120, "window": 60}],
            },
        )
    ]


def test_ai_policy_becomes_the_ai_balancer_with_the_fallback_first() -> None:
    config = example()
    router(config, "/chat")["ai_policy"]["fallback_backend_index"] = 1
    loaded = load(config, {"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": "http://127.0.0.1:1/v1"})
    pool = loaded.config.routes[1].upstream
    assert pool.balancer.name == "ai"
    assert pool.balancer.config == {
        "endpoint": {
            "base_url": "http://127.0.0.1:1/v1",
            "model": "gpt-4o-mini",
            "api_key_env": "OPENAI_API_KEY",
        },
        "request": {"body_bytes": 2048},
        "cache": {"key": ["method", "path", "body"]},
        "fallback": "first",
    }
    # `first` takes backends in order, so the seed's fallback backend leads the pool
    assert [b.url for b in pool.backends] == ["http://127.0.0.1:9004", "http://127.0.0.1:9003"]
    unchanged = load(example()).config.routes[1].upstream
    assert unchanged.balancer.config["endpoint"]["base_url"] == "https://api.openai.com/v1"
    assert [b.url for b in unchanged.backends] == ["http://127.0.0.1:9003", "http://127.0.0.1:9004"]


@pytest.mark.skipif(importlib.util.find_spec("kairos_ai") is None, reason="kairos-ai not installed")
def test_ai_balancer_settings_satisfy_the_ai_plugin_model() -> None:
    from kairos_ai.config import AiBalancerConfig

    config = example()
    del router(config, "/chat")["ai_policy"]["fallback_backend_index"]
    router(config, "/chat")["load_balancing_strategy"] = "least_connections"
    for seed in (example(), config):
        balancer = load(seed).config.routes[1].upstream.balancer
        AiBalancerConfig.model_validate(balancer.config)
    assert load(config).config.routes[1].upstream.balancer.config["fallback"] == "least_connections"


def test_example_warnings_name_the_seed_field_and_line() -> None:
    loaded = load_config(EXAMPLE_PATH, env=ENV)
    source = str(EXAMPLE_PATH)
    assert [w.split(": ")[0:2] for w in loaded.warnings] == [
        [f"{source}:4", "jwt.secret"],
        [f"{source}:42", "routers[0].backends[1]"],
        [f"{source}:97", "routers[1].ai_policy"],
    ]
    assert "${JWT_SECRET}" in loaded.warnings[0]
    assert "probes every backend of the pool, this one too, at /health" in loaded.warnings[1]
    assert "OPENAI_API_KEY" in loaded.warnings[2]


def test_secret_from_the_environment_is_not_warned_about() -> None:
    config = example()
    config["jwt"]["secret"] = "${JWT_SECRET}"
    secret = "s" * 40
    loaded = load(config, {**ENV, "JWT_SECRET": secret})
    assert not any("jwt.secret" in w for w in loaded.warnings)
    assert loaded.config.routes[0].plugins[0].config["keys"] == [{"secret": secret}]
    assert secret in loaded.env_values


@pytest.mark.parametrize(
    ("strategy", "window_type", "key", "algorithm"),
    [
        ("PerIP", "FixedWindow", ["ip"], "fixed_window"),
        ("PerRoute", "SlidingWindow", ["route"], "sliding_window_counter"),
        ("PerIPAndRoute", "TokenBucket", ["ip", "route"], "token_bucket"),
        ("PerUser", "FixedWindow", ["consumer"], "fixed_window"),
        ("PerUserAndRoute", "FixedWindow", ["consumer", "route"], "fixed_window"),
    ],
)
def test_rate_limit_strategies_and_windows(
    strategy: str, window_type: str, key: list[str], algorithm: str
) -> None:
    config = example()
    config["rate_limit"].update(strategy=strategy, window_type=window_type)
    data, warnings = convert(config)
    entry = data["plugins"][0]["config"]
    assert entry["key"] == key
    assert entry["limits"] == [{"algorithm": algorithm, "limit": 120, "window": 60}]
    per_user = "consumer" in key
    assert ("on_missing_key" in entry) is per_user
    assert (
        any("rate_limit.strategy" in w and "chat, legacy-status, ws-chat" in w for w in warnings)
        is per_user
    )


def test_rate_limit_with_redis_reads_the_url_from_the_environment() -> None:
    config = example()
    config["rate_limit"]["enable_redis"] = True
    data, warnings = convert(config)
    entry = data["plugins"][0]["config"]
    assert entry["backend"] == "redis"
    assert entry["redis"] == {
        "url": "${KAIROS_REDIS_URL:-redis://127.0.0.1:6379/0}",
        "key_prefix": "kairos_rl:",
    }
    assert any("rate_limit.enable_redis" in w and "KAIROS_REDIS_URL" in w for w in warnings)
    loaded = load(config, {**ENV, "KAIROS_REDIS_URL": "redis://127.0.0.1:6379/3"})
    assert loaded.config.plugins[0].config["redis"]["url"] == "redis://127.0.0.1:6379/3"
    assert load(config).config.plugins[0].config["redis"]["url"] == "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize(
    ("strategy", "balancer"),
    [
        ("round_robin", None),
        ("least_connections", "least_connections"),
        ("random", "random"),
        ("weighted", "weighted_round_robin"),
        ("ip_hash", {"name": "consistent_hash", "config": {"key": "client_ip"}}),
    ],
)
def test_load_balancing_strategies(strategy: str, balancer: Any) -> None:
    config = example()
    router(config, "/api/users/{id}")["load_balancing_strategy"] = strategy
    data, _ = convert(config)
    assert data["routes"][0]["upstream"].get("balancer") == balancer


def test_regex_replacements_survive_env_interpolation() -> None:
    assert regex_replacement("/v2/$1") == "/v2/$1"
    assert regex_replacement("/v2/${1}x") == "/v2/${1}x"
    assert regex_replacement("/$ver/x") == "/$ver/x"
    assert regex_replacement("/${ver}/x") == "/$ver/x"
    assert regex_replacement("/${ver}x") == "/$${ver}x"
    assert regex_replacement("cost: $$5 $(x)") == "cost: $$$$5 $$$$(x)"
    config = example()
    transformation = router(config, "/api/users/{id}")["request_transformation"]
    transformation["path"] = {
        "pattern": "^/v1/(?P<kind>[a-z]+)/(.+)$",
        "replacement": "/${kind}s/${2}",
    }
    transformation["headers"].append(
        {
            "action": "replace",
            "name": "X-Version",
            "pattern": "v(?P<n>\\d+)",
            "replacement": "${n}_$$",
        }
    )
    transformation["headers"].append({"action": "set", "name": "X-Price", "value": "US$5 $(raw)"})
    plugin = load(config).config.routes[0].plugins[1].config["request"]
    # What the transform plugin receives after the loader's ${ENV} pass: the seed's meaning.
    assert plugin["path"]["replacement"] == "/${kind}s/${2}"
    assert plugin["headers"][1] == {
        "action": "replace",
        "name": "X-Version",
        "pattern": "v(?P<n>\\d+)",
        "replacement": "${n}_$$",
        "all": False,
    }
    assert plugin["headers"][2]["value"] == "US$5 $$(raw)"


def test_duplicate_paths_get_unique_route_names() -> None:
    config = example()
    twin = json.loads(json.dumps(router(config, "/legacy/status")))
    twin["methods"] = ["POST"]
    config["routers"].append(twin)
    data, _ = convert(config)
    assert [r["name"] for r in data["routes"]] == [
        "api-users-id",
        "chat",
        "legacy-status",
        "ws-chat",
        "legacy-status-2",
    ]
    load(config)


def test_ftp_and_dns_routers_become_pools_with_listener_guidance() -> None:
    config = example()
    config["routers"] += [
        {
            "protocol": "ftp",
            "external_path": "/files",
            "backends": [{"host": "ftp://127.0.0.1", "port": 2121, "weight": 1}],
        },
        {
            "protocol": "dns",
            "external_path": "/dns",
            "host": "127.0.0.1",
            "port": 5300,
            "methods": ["GET"],
        },
    ]
    loaded = load(config)
    assert len(loaded.config.routes) == 4
    assert {
        name: [b.url for b in pool.backends] for name, pool in loaded.config.upstreams.items()
    } == {
        "files": ["ftp://127.0.0.1:2121"],
        "dns": ["dns://127.0.0.1:5300"],
    }
    ftp = next(w for w in loaded.warnings if "routers[4].protocol" in w)
    assert (
        "kairos-ftp" in ftp
        and "{protocol: ftp, host: 0.0.0.0, port: 2121, config: {upstream: files}}" in ftp
    )
    dns = next(w for w in loaded.warnings if "routers[5].protocol" in w)
    assert '{zones: {".": dns}}' in dns
    assert any("routers[5]: methods has no meaning for a dns router" in w for w in loaded.warnings)


def test_unused_sections_are_warned_about() -> None:
    config = example()
    for entry in config["routers"]:
        entry["auth_required"] = False
        entry.pop("ai_policy", None)
    warnings = load(config).warnings
    assert any(": jwt: no router has auth_required" in w for w in warnings)
    assert any(": ai: no router has an enabled ai_policy" in w for w in warnings)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda c: c.update(listen_port=8080),
            "seed.json:147: listen_port: unknown field in the seed config.json format",
        ),
        (
            lambda c: c["routers"][0].update(timeout_ms=100),
            "seed.json:88: routers[0].timeout_ms: unknown field in the seed config.json format",
        ),
        (
            lambda c: c["routers"][0]["backends"][1].update(wieght=3),
            "seed.json:46: routers[0].backends[1].wieght: unknown field",
        ),
        (
            lambda c: c["rate_limit"].update(window_type="Leaky"),
            "seed.json:16: rate_limit.window_type: Input should be 'FixedWindow', 'SlidingWindow' or 'TokenBucket'",
        ),
        (
            lambda c: c.update(routes=[]),
            "seed.json:3: jwt: `jwt` belongs to the seed system's config.json format",
        ),
        (
            lambda c: c["routers"][0]["backends"][0].update(host="ftp://127.0.0.1"),
            "routers[0].backends[0].host: scheme ftp:// cannot serve a http router",
        ),
        (
            lambda c: c["routers"][0]["backends"][0].update(host="http://127.0.0.1:80"),
            "routers[0].backends[0].host: give the port in `port`",
        ),
        (
            lambda c: c["routers"][0].update(internal_path="/v1/user/{user}"),
            "seed.json:28: routers[0].internal_path: uses user which external_path does not define",
        ),
        (
            lambda c: c["routers"][2].update(auth_required=True) or c.pop("jwt"),
            "routers[2].auth_required: needs the top-level `jwt` section",
        ),
        (
            lambda c: c["jwt"].update(secret="too-short"),
            "seed.json:4: jwt.secret: too short (9 bytes)",
        ),
        (
            lambda c: c["routers"][1]["ai_policy"].update(provider="watson"),
            "routers[1].ai_policy.provider: unknown provider 'watson'",
        ),
        (
            lambda c: c["routers"][1]["ai_policy"].update(fallback_backend_index=2),
            "routers[1].ai_policy.fallback_backend_index: there is no backend 2 (the route has 2)",
        ),
        (
            lambda c: c["routers"][2].pop("host"),
            "routers[2]: the legacy form needs both `host` and `port`",
        ),
        (
            lambda c: c["routers"][0]["backends"][0].update(port="9001"),
            "routers[0].backends[0].port: Input should be a valid integer",
        ),
    ],
)
def test_bad_seed_configs_name_the_field(change: Any, expected: str) -> None:
    config = example()
    change(config)
    assert expected in problems(config)


def test_a_native_config_is_not_taken_for_a_seed_one() -> None:
    loaded = load_config_text("routes: []\n", "native.yaml")
    assert loaded.warnings == ()
    with pytest.raises(ConfigError, match=r"native\.yaml:1: jwtt: unknown field"):
        load_config_text("jwtt: {}\nroutes: []\n", "native.yaml")
