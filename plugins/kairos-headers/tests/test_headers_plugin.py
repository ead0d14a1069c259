"""kairos-headers end to end: request and response edits, scopes, and config errors."""

from __future__ import annotations

from typing import Any

import pytest

from kairos_core.config import ConfigError
from kairos_core.testing import Backend, running_gateway


def route(backend: Backend, plugins: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "prefix": "/",
        "upstream": {"backends": [{"url": backend.url}]},
        "plugins": plugins,
        **extra,
    }


async def test_request_and_response_edits(kairos_gateway, echo_backend, http) -> None:
    config = {
        "request": {
            "set": {"X-Gateway": "kairos"},
            "remove": ["X-Secret"],
            "add": {"X-Tenant": "default"},
        },
        "response": {
            "remove": ["X-Backend"],
            "add": {"X-Added": "1"},
            "set": {"Cache-Control": "no-store"},
        },
    }
    gw = await kairos_gateway(
        {"routes": [route(echo_backend, [{"name": "headers", "config": config}])]}
    )
    async with http.get(gw.url + "/", headers={"X-Secret": "s", "X-Tenant": "acme"}) as response:
        body = await response.json()
        assert "X-Backend" not in response.headers
        assert response.headers["X-Added"] == "1"
        assert response.headers["Cache-Control"] == "no-store"
    assert body["headers"]["X-Gateway"] == "kairos"
    assert body["headers"]["X-Tenant"] == "acme"  # `add` keeps a value the client sent
    assert "X-Secret" not in body["headers"]


async def test_route_entry_replaces_the_global_one(kairos_gateway, echo_backend, http) -> None:
    gw = await kairos_gateway(
        {
            "plugins": [{"name": "headers", "config": {"request": {"set": {"X-Scope": "global"}}}}],
            "routes": [
                {"path": "/global", "upstream": {"backends": [{"url": echo_backend.url}]}},
                route(
                    echo_backend,
                    [{"name": "headers", "config": {"request": {"set": {"X-Scope": "route"}}}}],
                    prefix="/route",
                ),
                route(echo_backend, [{"name": "headers", "enabled": False}], prefix="/off"),
            ],
        }
    )
    for path, expected in (("/global", "global"), ("/route", "route"), ("/off", None)):
        async with http.get(gw.url + path) as response:
            assert (await response.json())["headers"].get("X-Scope") == expected, path


async def test_bad_settings_are_reported_with_their_field(echo_backend) -> None:
    config = {
        "routes": [route(echo_backend, [{"name": "headers", "config": {"request": {"sett": {}}}}])]
    }
    with pytest.raises(
        ConfigError, match=r"routes\[0\]\.plugins\[0\]\.config\.request\.sett: unknown field"
    ):
        async with running_gateway(config):
            pass
