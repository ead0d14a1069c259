"""Bearer-token protection of the admin listener (constant-time comparison)."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web

PUBLIC_KEY = web.AppKey("kairos_public_paths", set)
STREAM_PATH = "/stream"
STREAM_PROTOCOL = "kairos.stream"
"""The subprotocol the stream answers with; browsers offer it next to the bearer one."""
BEARER_PROTOCOL = "bearer."
"""`bearer.<base64url token, no padding>`: the token where browsers cannot set headers."""


def subprotocol_token(request: web.Request) -> bytes | None:
    """The token offered as a `bearer.<base64url>` WebSocket subprotocol (b"" if malformed)."""
    for offered in request.headers.getall("Sec-WebSocket-Protocol", ()):
        for item in offered.split(","):
            item = item.strip()
            if not item.startswith(BEARER_PROTOCOL):
                continue
            encoded = item[len(BEARER_PROTOCOL) :]
            try:
                return base64.b64decode(
                    encoded + "=" * (-len(encoded) % 4), altchars=b"-_", validate=True
                )
            except (binascii.Error, ValueError):
                return b""
    return None


def token_middleware(token: str | None) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Refuse requests without `Authorization: Bearer <token>` whenever a token is configured.

    The live stream alone also takes the token as a WebSocket subprotocol, since browsers
    cannot set headers on a WebSocket (a query parameter would end up in access logs).
    """
    expected = f"Bearer {token}".encode() if token else None
    expected_raw = token.encode() if token else b""

    @web.middleware
    async def check_token(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if expected is None:
            return await handler(request)
        if request.path in request.app[PUBLIC_KEY]:
            return await handler(request)
        header = request.headers.get("Authorization")
        if header is not None:
            allowed = hmac.compare_digest(header.encode(), expected)
        elif request.path == STREAM_PATH and (offered := subprotocol_token(request)) is not None:
            allowed = hmac.compare_digest(offered, expected_raw)
        else:
            allowed = False
        if not allowed:
            return web.json_response(
                {"status": 401, "type": "unauthorized", "message": "admin token required"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="kairos-admin"'},
            )
        return await handler(request)

    return check_token
