"""transform templates fed by the real jwt plugin: claims and the consumer it maps to."""

from __future__ import annotations

import time
from typing import Any

import jwt

SECRET = "transform-jwt-test-secret-0123456789abcdef"


def token(sub: str, **claims: Any) -> str:
    now = int(time.time())
    return jwt.encode({"sub": sub, "iat": now, "exp": now + 600, **claims}, SECRET, "HS256")


async def test_claims_and_consumer_reach_the_backend(kairos_gateway, echo_backend, http) -> None:
    transform = {
        "request": {
            "headers": [
                {"action": "set", "name": "X-Sub", "value": "$(claims.sub)"},
                {"action": "set", "name": "X-Org", "value": "$(claims.org.id)"},
                {"action": "set", "name": "X-Who", "value": "$(consumer.name)"},
                {"action": "set", "name": "X-Plan", "value": "$(consumer.metadata.plan|none)"},
            ],
            "query": [{"action": "set", "name": "tenant", "value": "$(claims.org.id)"}],
        }
    }
    gw = await kairos_gateway(
        {
            "consumers": [{"name": "alice", "metadata": {"plan": "gold"}}],
            "routes": [
                {
                    "prefix": "/",
                    "upstream": {"backends": [{"url": echo_backend.url}]},
                    "plugins": [
                        {"name": "jwt", "config": {"keys": [{"secret": SECRET}]}},
                        {"name": "transform", "config": transform},
                    ],
                }
            ],
        }
    )
    bearer = {"Authorization": "Bearer " + token("alice", org={"id": 7})}
    async with http.get(gw.url + "/r", headers=bearer) as response:
        assert response.status == 200, await response.text()
    record = echo_backend.records[-1]
    assert record.headers["X-Sub"] == "alice"
    assert record.headers["X-Org"] == "7"
    assert record.headers["X-Who"] == "alice"
    assert record.headers["X-Plan"] == "gold"
    assert record.raw_path == "/r?tenant=7"
