"""Kairos FTP: a native FTP/FTPS proxy listener (`ftp`) and an HTTP-to-FTP bridge (`ftp-bridge`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kairos_core import GatewayServices, ProtocolPlugin, StagePlugin, hookimpl
from kairos_ftp import live
from kairos_ftp.bridge import BridgeSettings, build_bridge
from kairos_ftp.listener import FtpListener, start_ftp
from kairos_ftp.probe import probe_ftp
from kairos_ftp.settings import FtpListenerSettings, GatewayTLS

__all__ = [
    "BridgeSettings",
    "FtpListener",
    "FtpListenerSettings",
    "GatewayTLS",
    "probe_ftp",
]


@hookimpl
def register_protocol_handlers(register: Callable[[ProtocolPlugin[Any]], None]) -> None:
    """Register the `ftp` listener protocol."""
    register(
        ProtocolPlugin(
            name="ftp",
            start=start_ftp,
            config_model=FtpListenerSettings,
            every_worker=False,
            description="FTP/FTPS proxy: relays sessions to an upstream pool of FTP servers.",
        )
    )


@hookimpl
def register_transformers(register: Callable[[StagePlugin[Any]], None]) -> None:
    """Register the `ftp-bridge` stage (HTTP requests answered from an FTP pool)."""
    register(
        StagePlugin(
            name="ftp-bridge",
            build=build_bridge,
            config_model=BridgeSettings,
            description="Serves GET/HEAD/PUT/DELETE from an FTP upstream pool.",
        )
    )


@hookimpl
def kairos_startup(services: GatewayServices) -> None:
    """FTP pools of the new configuration get FTP health probes; listeners switch to them."""
    live.activate(services)


@hookimpl
def kairos_shutdown(services: GatewayServices) -> None:
    """Forget a retired configuration."""
    live.retire(services)
