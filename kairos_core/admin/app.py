"""The admin application: health, metrics, routes, upstreams, config, reload, plugins, stream."""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from kairos_core.admin.auth import PUBLIC_KEY, token_middleware
from kairos_core.admin.body import json_error
from kairos_core.admin.stream import OPEN_STREAMS_KEY, close_streams, stream
from kairos_core.config.models import AdminConfig
from kairos_core.control import ControlPlane
from kairos_core.metrics import render
from kairos_core.plugin_api import AdminRoute
from kairos_core.version import __version__

CONTROL_KEY = web.AppKey("kairos_control", ControlPlane)
PLUGIN_ROUTES_KEY = web.AppKey("kairos_plugin_routes", list[AdminRoute])
PUBLIC_PATHS = frozenset({"/health", "/live", "/ready"})
MAX_CANDIDATE = 4 * 1024 * 1024
BLANK = " \t\r\n"
"""A candidate of only these characters is refused (the OpenAPI document says the same)."""


async def health(request: web.Request) -> web.Response:
    """The gateway is up (degraded when a worker is down)."""
    status = request.app[CONTROL_KEY].health()
    return web.json_response(status, status=200 if status["status"] == "ok" else 503)


async def live(request: web.Request) -> web.Response:
    """The admin listener answers (liveness probe)."""
    return web.json_response({"status": "ok", "version": __version__})


async def ready(request: web.Request) -> web.Response:
    """Config loaded, listeners bound, workers answering (readiness probe)."""
    result = await request.app[CONTROL_KEY].readiness()
    return web.json_response(result, status=200 if result["ready"] else 503)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition, merged across workers."""
    body = render(await request.app[CONTROL_KEY].metrics())
    return web.Response(
        body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
    )


def _view(name: str) -> Any:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response(await request.app[CONTROL_KEY].inspect(name))

    handler.__doc__ = f"The running gateway's {name}."
    return handler


async def validate(request: web.Request) -> web.Response:
    """Validate a candidate config (YAML or JSON in the body), plugins' settings included."""
    if request.content_length is not None and request.content_length > MAX_CANDIDATE:
        return json_error(
            413, "body_too_large", f"a candidate config may be at most {MAX_CANDIDATE} bytes"
        )
    body = await request.read()
    try:
        text = body.decode(request.charset or "utf-8")
    except (LookupError, UnicodeDecodeError) as exc:
        return json_error(400, "invalid_encoding", f"the candidate is not readable text: {exc}")
    if not text.strip(BLANK):
        return json_error(400, "empty_body", "send the candidate configuration as the request body")
    return web.json_response(await request.app[CONTROL_KEY].validate(text))


async def reload(request: web.Request) -> web.Response:
    """Reload the config file in every worker; a bad file keeps the current configuration."""
    result = await request.app[CONTROL_KEY].reload()
    if result.get("ok"):
        return web.json_response(result)
    message = str(result.get("error") or "reload failed")
    # an error body like every other one, still carrying the ReloadResult fields
    error = {"status": 422, "type": "reload_failed", "message": message}
    return web.json_response({**error, **result}, status=422)


async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI document of this admin API."""
    from kairos_core.admin.openapi import build_openapi

    plugin_routes: list[AdminRoute] = request.app[PLUGIN_ROUTES_KEY]
    return web.json_response(build_openapi(plugin_routes))


def build_admin_app(
    control: ControlPlane, config: AdminConfig, extra_routes: Iterable[AdminRoute] = ()
) -> web.Application:
    """The admin aiohttp application with token protection and plugin routes."""
    token = config.token.get_secret_value() if config.token else None
    app = web.Application(middlewares=[token_middleware(token)], client_max_size=MAX_CANDIDATE)
    app[CONTROL_KEY] = control
    app[OPEN_STREAMS_KEY] = weakref.WeakSet()
    app.on_shutdown.append(close_streams)
    public = set(PUBLIC_PATHS)
    router = app.router
    router.add_get("/health", health)
    router.add_get("/live", live)
    router.add_get("/ready", ready)
    router.add_get("/metrics", metrics)
    for name in ("routes", "upstreams", "config", "plugins"):
        router.add_get(f"/{name}", _view(name))
    router.add_post("/config/validate", validate)
    router.add_post("/config/reload", reload)
    router.add_get("/stream", stream)
    router.add_get("/openapi.json", openapi)
    plugin_routes = list(extra_routes)
    for route in plugin_routes:
        router.add_route(route.method, route.path, route.handler)
        if route.public:
            public.add(route.path)
    app[PUBLIC_KEY] = public
    app[PLUGIN_ROUTES_KEY] = plugin_routes
    return app


def control_plane(request: web.Request) -> ControlPlane:
    """The control plane behind an admin request (for plugin admin routes)."""
    return request.app[CONTROL_KEY]
