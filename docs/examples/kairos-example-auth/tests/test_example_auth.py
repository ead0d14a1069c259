"""The shared-secret authenticator through a real gateway, against a real echo backend."""

from __future__ import annotations

from typing import Any

import pytest
from kairos_example_auth import SharedSecretConfig
from pydantic import ValidationError

SECRET = "correct-horse-battery-staple"


def gateway_config(backend_url: str, **settings: Any) -> dict[str, Any]:
    """One route behind the `shared-secret` authenticator (loaded through its entry point)."""
    return {
        "consumers": [{"name": "billing", "metadata": {"team": "payments"}}],
        "routes": [
            {
                "prefix": "/",
                "upstream": {"backends": [{"url": backend_url}]},
                "plugins": [
                    {
                        "name": "shared-secret",
                        "config": {
                            "secrets": [{"consumer": "billing", "secret": SECRET}],
                            **settings,
                        },
                    }
                ],
            }
        ],
    }


async def test_right_secret_reaches_backend_as_consumer(kairos_gateway, echo_backend, http):
    gw = await kairos_gateway(gateway_config(echo_backend.url))
    async with http.get(gw.url + "/invoices", headers={"X-Shared-Secret": SECRET}) as response:
        assert response.status == 200
        seen = (await response.json())["headers"]
    assert seen["X-Consumer"] == "billing"
    assert "X-Shared-Secret" not in seen  # the secret never reaches the backend


async def test_missing_secret_is_401_with_challenge(kairos_gateway, echo_backend, http):
    gw = await kairos_gateway(gateway_config(echo_backend.url))
    async with http.get(gw.url + "/invoices") as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"] == 'SharedSecret header="X-Shared-Secret"'
        assert (await response.json())["message"] == "authentication required"
    assert echo_backend.records == []


async def test_wrong_secret_is_401(kairos_gateway, echo_backend, http):
    gw = await kairos_gateway(gateway_config(echo_backend.url, header="X-Key"))
    async with http.get(gw.url + "/", headers={"X-Key": "not-the-secret-at-all"}) as response:
        assert response.status == 401
        assert (await response.json())["message"] == "invalid shared secret"
    assert echo_backend.records == []


async def test_forward_keeps_the_header(kairos_gateway, echo_backend, http):
    gw = await kairos_gateway(gateway_config(echo_backend.url, forward=True))
    async with http.get(gw.url + "/", headers={"X-Shared-Secret": SECRET}) as response:
        assert (await response.json())["headers"]["X-Shared-Secret"] == SECRET


def test_short_secret_is_refused():
    with pytest.raises(ValidationError, match="at least 16 characters"):
        SharedSecretConfig.model_validate({"secrets": [{"consumer": "a", "secret": "short"}]})


async def test_bad_settings_name_the_field(kairos_gateway, echo_backend):
    config = gateway_config(echo_backend.url, colour="blue")
    with pytest.raises(
        Exception, match=r"routes\[0\]\.plugins\[0\]\.config\.colour: unknown field"
    ):
        await kairos_gateway(config)
