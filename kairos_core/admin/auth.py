"""Bearer-token protection of the admin listener (constant-time comparison)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web

PUBLIC_KEY = web.AppKey("kairos_public_paths", set)


def token_middleware(token: str | None) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Refuse requests without `Authorization: Bearer <token>` whenever a token is configured."""
    expected = f"Bearer {token}".encode() if token else None

    @web.middleware
    async def check_token(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if expected is None:
            return await handler(request)
        if request.path in request.app[PUBLIC_KEY]:
            return await handler(request)
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return web.json_response(
                {"status": 401, "type": "unauthorized", "message": "admin token required"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="kairos-admin"'},
            )
        return await handler(request)

    return check_token
