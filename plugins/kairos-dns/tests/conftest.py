"""Fixtures for the DNS tests: authoritative test servers, a fake clock, a gateway with DNS."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

sys.path.insert(0, str(Path(__file__).parent))

from kairos_dns import DnsListener, DnsPlugin
from kairos_dns_testkit import (
    DnsGateway,
    FakeClock,
    ZoneServer,
    example_zone,
    start_zone_server,
)

from kairos_core.testing import RunningGateway


@pytest.fixture
def clock() -> FakeClock:
    """A clock for cache TTLs and rate limits."""
    return FakeClock()


@pytest_asyncio.fixture
async def zone() -> AsyncIterator[ZoneServer]:
    """`example.test.` served over UDP and TCP."""
    server = await start_zone_server()
    yield server
    await server.close()


@pytest_asyncio.fixture
async def corp_zone() -> AsyncIterator[ZoneServer]:
    """`corp.internal.` on another server (for zone routing)."""
    server = await start_zone_server(
        example_zone("corp.internal.", "10.0.0.1"), origin="corp.internal."
    )
    yield server
    await server.close()


@pytest_asyncio.fixture
async def dns_gateway(kairos_gateway: Any, clock: FakeClock) -> DnsGateway:
    """`await dns_gateway(config)`: the gateway and its DNS listener (fake clock)."""

    async def start(config: dict[str, Any], *plugins: object) -> tuple[RunningGateway, DnsListener]:
        gw = await kairos_gateway(config, plugins=[DnsPlugin(clock=clock), *plugins])
        [service] = [s for listener, s in gw.gateway.services if listener.protocol == "dns"]
        assert isinstance(service, DnsListener)
        return gw, service

    return start
