"""register_admin_routes: plugin endpoints on the admin listener, token rules, worker commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from kairos_core import (
    AdminRoute,
    BuildContext,
    Handler,
    Middleware,
    NoConfig,
    RequestContext,
    Response,
    StagePlugin,
    control_plane,
    hookimpl,
)

TOKEN = "admin-token-for-tests-0123456789"


class AdminProbe:
    """A counter stage whose count an admin endpoint reads through a broadcast command."""

    @hookimpl
    def register_loggers(self, register: Callable[[StagePlugin[Any]], None]) -> None:
        def build(config: NoConfig, context: BuildContext) -> Middleware:
            count = [0]

            async def report(payload: dict[str, Any]) -> int:
                return count[0]

            context.services.commands["probe-count"] = report

            async def counting(ctx: RequestContext, call_next: Handler) -> Response:
                count[0] += 1
                return await call_next(ctx)

            return counting

        register(StagePlugin(name="counter", build=build))

    @hookimpl
    def register_admin_routes(self, register: Callable[[AdminRoute], None]) -> None:
        async def counts(request: web.Request) -> web.Response:
            """Requests counted by every worker."""
            results = await control_plane(request).broadcast("probe-count", {})
            return web.json_response({"per_worker": results})

        async def asset(request: web.Request) -> web.Response:
            """A static asset, served without the token."""
            return web.Response(text="body{}", content_type="text/css")

        register(AdminRoute("GET", "/probe/counts", counts, name="probe-counts"))
        register(AdminRoute("GET", "/probe/style.css", asset, public=True))


def gateway_config(backend_url: str) -> dict[str, Any]:
    return {
        "admin": {"port": 0, "token": TOKEN},
        "plugins": [{"name": "counter"}],
        "routes": [{"prefix": "/", "upstream": {"backends": [{"url": backend_url}]}}],
    }


async def test_plugin_admin_route_needs_the_token_and_reaches_the_workers(
    kairos_gateway, echo_backend, http
):
    gw = await kairos_gateway(gateway_config(echo_backend.url), plugins=[AdminProbe()])
    for _ in range(2):
        async with http.get(gw.url + "/") as response:
            assert response.status == 200
    async with http.get(gw.admin_url + "/probe/counts") as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="kairos-admin"'
    wrong = {"Authorization": "Bearer not-the-token"}
    async with http.get(gw.admin_url + "/probe/counts", headers=wrong) as response:
        assert response.status == 401
    right = {"Authorization": f"Bearer {TOKEN}"}
    async with http.get(gw.admin_url + "/probe/counts", headers=right) as response:
        assert response.status == 200
        assert await response.json() == {"per_worker": [2]}


async def test_public_plugin_route_and_health_need_no_token(kairos_gateway, echo_backend, http):
    gw = await kairos_gateway(gateway_config(echo_backend.url), plugins=[AdminProbe()])
    async with http.get(gw.admin_url + "/probe/style.css") as response:
        assert response.status == 200
        assert await response.text() == "body{}"
    async with http.get(gw.admin_url + "/health") as response:
        assert response.status == 200
        assert (await response.json())["status"] == "ok"
