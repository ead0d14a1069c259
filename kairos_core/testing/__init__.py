"""Helpers for testing Kairos and its plugins against real sockets on loopback.

`running_gateway(config)` starts a gateway in the current event loop on free ports;
`start_backend(app)` serves an aiohttp app as a backend; `echo_app()` is a backend that
reports exactly what it received; `GatewayProcess` runs `kairos serve` as a subprocess.
The pytest fixtures in `kairos_core.testing.pytest_plugin` wrap these.
"""

from kairos_core.testing.backends import Backend, EchoRecord, echo_app, start_backend
from kairos_core.testing.harness import RunningGateway, running_gateway
from kairos_core.testing.process import GatewayProcess, free_port, wait_for_port
from kairos_core.testing.services import redis_available, require_service

__all__ = [
    "Backend",
    "EchoRecord",
    "GatewayProcess",
    "RunningGateway",
    "echo_app",
    "free_port",
    "redis_available",
    "require_service",
    "running_gateway",
    "start_backend",
    "wait_for_port",
]
