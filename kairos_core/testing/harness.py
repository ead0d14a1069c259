"""Start a gateway inside the test's event loop, on free ports, with chosen plugins."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web

from kairos_core.config.loader import LoadedConfig, validate_config
from kairos_core.gateway import Gateway
from kairos_core.plugins import PluginHost
from kairos_core.process import LocalControl, start_admin


@dataclass
class RunningGateway:
    """A gateway started by `running_gateway`."""

    gateway: Gateway
    url: str
    """Base URL of the first HTTP listener (no trailing slash)."""
    urls: list[str]
    admin_url: str | None
    loaded: LoadedConfig

    async def reload(self, config: dict[str, Any] | str) -> None:
        """Swap in a new configuration, keeping the listeners."""
        await self.gateway.reload(_load(config, free_ports=False))


def _load(config: dict[str, Any] | str | LoadedConfig, free_ports: bool = True) -> LoadedConfig:
    """Validate a config given as a dict or YAML text; default to free loopback ports."""
    if isinstance(config, LoadedConfig):
        return config
    data: dict[str, Any] = yaml.safe_load(config) if isinstance(config, str) else dict(config)
    if free_ports:
        data.setdefault("listeners", [{"host": "127.0.0.1", "port": 0}])
        data["admin"] = {"port": 0, **(data.get("admin") or {})}
    observability = dict(data.get("observability") or {})
    observability.setdefault("access_log", {"enabled": False})  # tests opt in explicitly
    data["observability"] = observability
    return validate_config(data, "<test config>")


@asynccontextmanager
async def running_gateway(
    config: dict[str, Any] | str | LoadedConfig,
    plugins: Iterable[object] = (),
    *,
    admin: bool = True,
) -> AsyncIterator[RunningGateway]:
    """Run a gateway for the block; listeners default to 127.0.0.1 on a free port.

    `plugins` are plugin objects (modules or instances with hook implementations) registered
    like built-ins, so a plugin under test needs no entry point; installed plugins that the
    config names are loaded through their entry points as usual.
    """
    from kairos_core.builtin import PLUGINS

    loaded = _load(config)
    host = PluginHost(builtins=[*PLUGINS, *plugins])
    gateway = Gateway(loaded, host=host)
    await gateway.start()
    admin_runner: web.AppRunner | None = None
    admin_url = None
    try:
        if admin and loaded.config.admin.enabled:
            started = await start_admin(
                loaded.config.admin,
                LocalControl(gateway),
                gateway.registry.admin_routes if gateway.registry else (),
            )
            if started is not None:
                admin_runner, admin_url = started
        urls = [b.url for b in gateway.listeners]
        yield RunningGateway(gateway, urls[0] if urls else "", urls, admin_url, loaded)
    finally:
        if admin_runner is not None:
            await admin_runner.cleanup()
        await gateway.stop(2.0)
