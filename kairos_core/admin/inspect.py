"""Read-only views of a running gateway for the admin API (routes, upstreams, config, plugins)."""

from __future__ import annotations

from typing import Any

from kairos_core.admin.models import BackendInfo, PluginInfo, RouteInfo, UpstreamInfo
from kairos_core.admin.redact import redacted_config
from kairos_core.gateway import Gateway
from kairos_core.plugins import installed_plugins
from kairos_core.runtime import required_plugin_names


def routes(gateway: Gateway) -> list[dict[str, Any]]:
    """Every route with its match rules and chain."""
    out = []
    for route in gateway.runtime.routes:
        config = route.config
        out.append(
            RouteInfo(
                name=route.name,
                path=config.path,
                prefix=config.prefix,
                methods=config.methods,
                hosts=config.hosts,
                headers=config.headers,
                priority=config.priority,
                upstream=route.pool.name,
                rewrite=config.rewrite,
                strip_prefix=config.strip_prefix,
                chain=route.chain,
                consumer_chains=route.consumer_chains,
            ).model_dump(mode="json")
        )
    return out


def upstreams(gateway: Gateway) -> list[dict[str, Any]]:
    """Every pool with its backends' live state."""
    out = []
    for pool in gateway.runtime.pools.values():
        backends = [
            BackendInfo(
                name=b.name,
                url=b.url,
                weight=b.weight,
                state=b.state,
                healthy=b.healthy,
                available=b.available,
                circuit=b.breaker.state.value if b.breaker is not None else None,
                in_flight=b.in_flight,
            )
            for b in pool.backends
        ]
        out.append(
            UpstreamInfo(
                name=pool.name,
                balancer=pool.config.balancer.name,
                panic_mode=pool.config.panic_mode,
                health_checks=pool.config.health_check.active is not None,
                backends=backends,
            ).model_dump(mode="json")
        )
    return out


def config(gateway: Gateway) -> dict[str, Any]:
    """The running configuration with secrets masked."""
    return redacted_config(gateway.runtime.loaded, gateway.registry)


def plugins(gateway: Gateway) -> list[dict[str, Any]]:
    """Installed plugin entry points and whether the running config enables them."""
    enabled = set(required_plugin_names(gateway.runtime.config))
    return [
        PluginInfo(
            name=p.name, distribution=p.distribution, version=p.version, enabled=p.name in enabled
        ).model_dump()
        for p in installed_plugins()
    ]


VIEWS = {"routes": routes, "upstreams": upstreams, "config": config, "plugins": plugins}
