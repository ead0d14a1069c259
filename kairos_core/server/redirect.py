"""A listener mode that redirects every request to the HTTPS origin."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web


def redirect_handler(origin: str) -> Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]:
    """Answer each request with 308 to the same path and query on `origin`."""
    base = origin.rstrip("/")

    async def redirect(request: web.BaseRequest) -> web.StreamResponse:
        target = request.raw_path if request.raw_path.startswith("/") else "/"
        return web.Response(
            status=308,
            headers={"Location": base + target, "Content-Type": "text/plain", "Server": "kairos"},
            text=f"redirecting to {base}{target}\n",
        )

    return redirect
