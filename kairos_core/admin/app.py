"""The admin application: built once per process on the admin listener."""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from kairos_core.admin.auth import PUBLIC_KEY, token_middleware
from kairos_core.config.models import AdminConfig
from kairos_core.control import ControlPlane
from kairos_core.plugin_api import AdminRoute

CONTROL_KEY = web.AppKey("kairos_control", ControlPlane)
PUBLIC_PATHS = frozenset({"/health", "/live", "/ready"})


async def health(request: web.Request) -> web.Response:
    """The gateway process is up and its configuration is loaded."""
    control = request.app[CONTROL_KEY]
    status = control.health()
    return web.json_response(status, status=200 if status["status"] == "ok" else 503)


async def live(request: web.Request) -> web.Response:
    """The admin listener answers (liveness probe)."""
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    """Configuration loaded, listeners bound and dependencies reachable (readiness probe)."""
    control = request.app[CONTROL_KEY]
    result = await control.readiness()
    return web.json_response(result, status=200 if result["ready"] else 503)


def build_admin_app(
    control: ControlPlane, config: AdminConfig, extra_routes: Iterable[AdminRoute] = ()
) -> web.Application:
    """The admin aiohttp application with token protection and plugin routes."""
    token = config.token.get_secret_value() if config.token else None
    app = web.Application(middlewares=[token_middleware(token)])
    app[CONTROL_KEY] = control
    public = set(PUBLIC_PATHS)
    app.router.add_get("/health", health)
    app.router.add_get("/live", live)
    app.router.add_get("/ready", ready)
    for route in extra_routes:
        app.router.add_route(route.method, route.path, route.handler)
        if route.public:
            public.add(route.path)
    app[PUBLIC_KEY] = public
    return app


def control_plane(request: web.Request) -> ControlPlane:
    """The control plane behind an admin request (for plugin admin routes)."""
    return request.app[CONTROL_KEY]
