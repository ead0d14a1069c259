"""kairos_startup / kairos_shutdown: called per configuration, before traffic and on retirement."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from kairos_core import (
    BuildContext,
    GatewayServices,
    Handler,
    Middleware,
    NoConfig,
    RequestContext,
    Response,
    StagePlugin,
    hookimpl,
)
from kairos_core.testing import running_gateway


class LifecycleProbe:
    """Records lifecycle calls; the async startup prepares a resource the stage then uses."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []

    @hookimpl
    def kairos_startup(self, services: GatewayServices) -> Any:
        async def start() -> None:
            await asyncio.sleep(0)
            services.shared["probe"] = f"ready-{len(services.config.routes)}"
            self.events.append(("startup", id(services)))

        return start()

    @hookimpl
    def kairos_shutdown(self, services: GatewayServices) -> None:
        self.events.append(("shutdown", id(services)))

    @hookimpl
    def register_transformers(self, register: Callable[[StagePlugin[Any]], None]) -> None:
        def build(config: NoConfig, context: BuildContext) -> Middleware:
            shared = context.services.shared  # filled by kairos_startup before any request

            async def stage(ctx: RequestContext, call_next: Handler) -> Response:
                response = await call_next(ctx)
                response.headers["X-Probe"] = shared.get("probe", "missing")
                return response

            return stage

        register(StagePlugin(name="probe", build=build))


def gateway_config(backend_url: str, routes: int = 1) -> dict[str, Any]:
    """`routes` routes with the probe stage; a short grace before old configs retire."""
    return {
        "server": {"shutdown_timeout": 0.1},
        "plugins": [{"name": "probe"}],
        "routes": [
            {"name": f"r{i}", "prefix": f"/r{i}", "upstream": {"backends": [{"url": backend_url}]}}
            for i in range(routes)
        ],
    }


async def test_startup_before_traffic_shutdown_on_reload_and_stop(echo_backend, http):
    probe = LifecycleProbe()
    async with running_gateway(gateway_config(echo_backend.url), [probe]) as gw:
        first = id(gw.gateway.runtime.services)
        assert probe.events == [("startup", first)]
        async with http.get(gw.url + "/r0") as response:
            assert response.headers["X-Probe"] == "ready-1"

        await gw.reload(gateway_config(echo_backend.url, routes=2))
        second = id(gw.gateway.runtime.services)
        assert probe.events[-1] == ("startup", second)
        async with http.get(gw.url + "/r1") as response:
            assert response.headers["X-Probe"] == "ready-2"
        for _ in range(50):  # the old configuration retires after the grace period
            if ("shutdown", first) in probe.events:
                break
            await asyncio.sleep(0.02)
        assert probe.events == [("startup", first), ("startup", second), ("shutdown", first)]
    assert probe.events[-1] == ("shutdown", second)
