"""The soak's gateway configuration: two pools, five routes, real plugins, one generation number."""

from __future__ import annotations

import hashlib
import time

SECRET = "kairos-soak-secret-0123456789abcdef-0123456789"
API_KEY = "soak-api-key-0123456789abcdef"
UPSTREAM_KEEPALIVE = 3.0
"""Idle upstream connections close after this: quiet checkpoints wait it out."""


def token() -> str:
    """A JWT the `items` and `echo` routes accept for a week."""
    import jwt

    now = int(time.time())
    claims = {"sub": "soak", "iss": "https://issuer.soak", "aud": "api", "iat": now}
    return jwt.encode({**claims, "exp": now + 7 * 86400}, SECRET, algorithm="HS256")


def render(gateway_port: int, admin_port: int, backends: dict[str, int], generation: int) -> str:
    """The YAML for `generation` (each reload changes it, which the load can see)."""
    key_hash = hashlib.sha256(API_KEY.encode()).hexdigest()

    def pool(prefix: str) -> str:
        members = ", ".join(
            f"{{url: 'http://127.0.0.1:{port}', name: {name}}}"
            for name, port in backends.items()
            if name.startswith(prefix)
        )
        return (
            f"    backends: [{members}]\n"
            f"    keepalive_timeout: {UPSTREAM_KEEPALIVE}\n"
            "    health_check:\n"
            "      active: {path: /health, interval: 1, timeout: 1, healthy_threshold: 1,"
            " unhealthy_threshold: 1}\n"
            "      passive: {max_failures: 2, cooldown: 2}\n"
            "    circuit_breaker: {consecutive_failures: 3, open_duration: 2}\n"
        )

    retry = (
        "{max_retries: 2, backoff: {initial: 0.02, max: 0.2},"
        " budget: {ratio: 1.0, min_retries: 200}}"
    )
    jwt = (
        "{name: jwt, config: {keys: [{secret: '" + SECRET + "'}],"
        " issuer: 'https://issuer.soak', audience: api}}"
    )
    apikey = (
        "{name: apikey, config: {keys: [{consumer: soak-client, hash: 'sha256:" + key_hash + "'}]}}"
    )
    limit = "{name: rate-limit, config: {limits: [{rate: 1000000/s, algorithm: token_bucket}]}}"
    transform = (
        "{name: transform, config: {"
        f"request: {{headers: [{{action: set, name: X-Soak-Generation, value: '{generation}'}}]}}, "
        f"response: {{headers: [{{action: set, name: X-Soak-Generation, value: '{generation}'}}]}}"
        "}}"
    )
    return (
        f"# soak configuration, generation {generation}\n"
        f"listeners: [{{host: 127.0.0.1, port: {gateway_port}}}]\n"
        f"admin: {{host: 127.0.0.1, port: {admin_port}}}\n"
        "observability: {access_log: {enabled: false}}\n"
        "consumers: [{name: soak-client}]\n"
        "upstreams:\n"
        f"  api:\n{pool('api-')}"
        f"  bulk:\n{pool('bulk-')}"
        "routes:\n"
        f"  - {{name: items, prefix: /api/items, upstream: api, retry: {retry},"
        f" plugins: [{jwt}, {limit}, {transform}]}}\n"
        f"  - {{name: echo, path: /api/echo, methods: [POST], rewrite: /echo, upstream: api,"
        f" retry: {retry}, plugins: [{jwt}, {limit}]}}\n"
        f"  - {{name: stream, path: /files/stream, rewrite: /stream, upstream: bulk,"
        f" retry: {retry}, plugins: [{apikey}]}}\n"
        f"  - {{name: cached, path: '/files/cached/{{key}}', rewrite: '/cached/{{key}}',"
        f" upstream: bulk, retry: {retry},"
        f" plugins: [{apikey}, {{name: cache, config: {{allow_credentials: true}}}}]}}\n"
        f"  - {{name: ws, path: /ws, upstream: api, retry: {retry},"
        f" plugins: [{apikey}, {limit}]}}\n"
    )
