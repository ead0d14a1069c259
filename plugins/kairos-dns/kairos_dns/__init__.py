"""Kairos DNS: a caching DNS proxy over UDP and TCP (`dns` listener) and DNS over HTTPS (`doh`)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from kairos_core import (
    AdminRoute,
    BuildContext,
    GatewayServices,
    Phase,
    ProtocolPlugin,
    StagePlugin,
    hookimpl,
)
from kairos_dns.admin import ADMIN_ROUTE
from kairos_dns.config import DnsListenerConfig, DohConfig
from kairos_dns.doh import DohStage, build_doh
from kairos_dns.listener import (
    DnsListener,
    listener_key,
    rebind,
    running_listeners,
    start_listener,
)
from kairos_dns.state import SHARED_KEY, DnsState

if TYPE_CHECKING:
    from kairos_core.config.models import ListenerConfig

__all__ = ["DnsListener", "DnsListenerConfig", "DnsPlugin", "DohConfig", "DohStage"]


class DnsPlugin:
    """The plugin object; tests build one with their own clock (`DnsPlugin(clock=fake)`)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock

    def prepare(
        self, listener: ListenerConfig, settings: DnsListenerConfig, services: GatewayServices
    ) -> None:
        """At config load: check the zones' pools and set their DNS health probes."""
        DnsState.of(services, self.clock).resolver(listener_key(listener), settings)

    async def start(
        self, listener: ListenerConfig, settings: DnsListenerConfig, services: GatewayServices
    ) -> DnsListener:
        """Open the listener's UDP and TCP sockets."""
        return await start_listener(listener, settings, services, self.clock)

    def build_doh(self, config: DohConfig, context: BuildContext) -> DohStage:
        """Build one `doh` entry with this plugin's clock."""
        return build_doh(config, context, self.clock)

    @hookimpl
    def register_protocol_handlers(self, register: Callable[[ProtocolPlugin[Any]], None]) -> None:
        """Register the `dns` listener protocol (in every worker, see steering.py)."""
        register(
            ProtocolPlugin(
                name="dns",
                start=self.start,
                config_model=DnsListenerConfig,
                every_worker=True,
                prepare=self.prepare,
                description="Caching DNS proxy over UDP and TCP with zone routing.",
            )
        )

    @hookimpl
    def register_transformers(self, register: Callable[[StagePlugin[Any]], None]) -> None:
        """Register the `doh` stage (innermost, so auth and limits run before it)."""
        register(
            StagePlugin(
                name="doh",
                build=self.build_doh,
                config_model=DohConfig,
                phase=Phase.TRANSFORM,
                priority=-1000,
                description="DNS over HTTPS (RFC 8484) answered through the DNS resolver.",
            )
        )

    @hookimpl
    def register_admin_routes(self, register: Callable[[AdminRoute], None]) -> None:
        """Register `POST /dns/cache/purge`."""
        register(ADMIN_ROUTE)

    @hookimpl
    def kairos_startup(self, services: GatewayServices) -> None:
        """After a reload, move running listeners onto the new configuration."""
        rebind(services)

    @hookimpl
    def kairos_shutdown(self, services: GatewayServices) -> Awaitable[None] | None:
        """Close the retired configuration's upstream sockets, unless a listener still uses
        them (one that left the configuration keeps its old settings until a restart)."""
        state = services.shared.get(SHARED_KEY)
        if not isinstance(state, DnsState):
            return None
        in_use = {id(listener.resolver) for listener in running_listeners(services.instance_id)}
        if any(id(resolver) in in_use for resolver in state.resolvers.values()):
            return None
        return state.close()


_DEFAULT = DnsPlugin()


@hookimpl
def register_protocol_handlers(register: Callable[[ProtocolPlugin[Any]], None]) -> None:
    """Register the `dns` listener protocol."""
    _DEFAULT.register_protocol_handlers(register)


@hookimpl
def register_transformers(register: Callable[[StagePlugin[Any]], None]) -> None:
    """Register the `doh` stage."""
    _DEFAULT.register_transformers(register)


@hookimpl
def register_admin_routes(register: Callable[[AdminRoute], None]) -> None:
    """Register `POST /dns/cache/purge`."""
    _DEFAULT.register_admin_routes(register)


@hookimpl
def kairos_startup(services: GatewayServices) -> None:
    """After a reload, move running listeners onto the new configuration."""
    _DEFAULT.kairos_startup(services)


@hookimpl
def kairos_shutdown(services: GatewayServices) -> Awaitable[None] | None:
    """Close the retired configuration's upstream sockets."""
    return _DEFAULT.kairos_shutdown(services)
