"""Every hook a Kairos plugin can implement.

Hooks are called at start-up and when a configuration is (re)loaded, never per request: the
`register_*` hooks fill a registry that the per-route chains are built from once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from kairos_core.plugin_api import (
        AdminRoute,
        AuthPlugin,
        BalancerPlugin,
        GatewayServices,
        ProtocolPlugin,
        StagePlugin,
    )

PROJECT = "kairos"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# -- request pipeline -------------------------------------------------------------------------


@hookspec
def register_filters(register: Callable[[StagePlugin[Any]], None]) -> None:
    """Register stages that admit or refuse requests before authentication (IP filters, CORS)."""


@hookspec
def register_authenticators(register: Callable[[AuthPlugin[Any]], None]) -> None:
    """Register authentication methods (JWT, API keys, ...); a route accepts any of its methods."""


@hookspec
def register_rate_limiters(register: Callable[[StagePlugin[Any]], None]) -> None:
    """Register traffic-control stages (rate and concurrency limits), by default after auth."""


@hookspec
def register_caches(register: Callable[[StagePlugin[Any]], None]) -> None:
    """Register response-cache stages, which may answer without calling the upstream."""


@hookspec
def register_transformers(register: Callable[[StagePlugin[Any]], None]) -> None:
    """Register stages that change the request on its way up and/or the response on its way back."""


@hookspec
def register_loggers(register: Callable[[StagePlugin[Any]], None]) -> None:
    """Register outermost stages that observe every request and its final response."""


# -- upstreams and listeners ------------------------------------------------------------------


@hookspec
def register_balancers(register: Callable[[BalancerPlugin[Any]], None]) -> None:
    """Register backend selection strategies, chosen per upstream pool with `balancer:`."""


@hookspec
def register_protocol_handlers(register: Callable[[ProtocolPlugin[Any]], None]) -> None:
    """Register listeners for protocols other than HTTP, configured in `listeners:`."""


# -- control plane ----------------------------------------------------------------------------


@hookspec
def register_admin_routes(register: Callable[[AdminRoute], None]) -> None:
    """Register endpoints (API or pages) served on the admin listener."""


@hookspec
def register_cli_commands(cli: click.Group) -> None:
    """Add click commands or groups to the `kairos` command line."""


# -- lifecycle --------------------------------------------------------------------------------


@hookspec
def kairos_startup(services: GatewayServices) -> Any:
    """Called once a configuration's plugins are built, before traffic; may return an awaitable."""


@hookspec
def kairos_shutdown(services: GatewayServices) -> Any:
    """Called when a configuration is retired (shutdown or after a reload); may return an awaitable."""
