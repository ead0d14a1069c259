"""The current configuration's services per running gateway, so listeners follow reloads."""

from __future__ import annotations

from collections.abc import Mapping

from kairos_core import GatewayServices, UpstreamPool
from kairos_ftp.probe import install_probes

_current: dict[str, GatewayServices] = {}


def activate(services: GatewayServices) -> None:
    """A configuration went live: its FTP pools get FTP health probes; listeners use its pools."""
    install_probes(services.pools.values())
    _current[services.instance_id] = services


def retire(services: GatewayServices) -> None:
    """A configuration was retired; forget it unless a newer one replaced it already."""
    if _current.get(services.instance_id) is services:
        del _current[services.instance_id]


def pools_of(started_with: GatewayServices) -> Mapping[str, UpstreamPool]:
    """The pools of the gateway's current configuration (the first one's until a reload)."""
    current = _current.get(started_with.instance_id)
    return (current or started_with).pools
