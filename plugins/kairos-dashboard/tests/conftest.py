"""Fixtures for the dashboard tests: headless Chromium, a real `kairos serve`, real traffic."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from kairos_dashboard_testkit import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    Traffic,
    require_browser,
    write_config,
)

from kairos_core.testing import GatewayProcess


@pytest.fixture
async def chromium(tmp_path: Path) -> AsyncIterator[Any]:
    """A headless Chromium (Debian's) with a fresh profile, driven by playwright."""
    require_browser()
    from playwright.async_api import async_playwright

    async with async_playwright() as driver:
        context = await driver.chromium.launch_persistent_context(
            tmp_path / "chromium-profile",
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=DESKTOP,
            color_scheme="light",
            service_workers="block",
        )
        context.set_default_timeout(15_000)
        try:
            yield context
        finally:
            await context.close()


@pytest.fixture
async def start_gateway(
    tmp_path: Path,
) -> AsyncIterator[Callable[[dict[str, Any]], Awaitable[GatewayProcess]]]:
    """`gw = await start_gateway(config)`: `kairos serve --config <yaml>` until the test ends."""
    started: list[GatewayProcess] = []

    async def start(config: dict[str, Any]) -> GatewayProcess:
        gateway = GatewayProcess(["--config", str(write_config(tmp_path, config))])
        started.append(gateway)
        return await gateway.start()

    yield start
    for gateway in started:
        await gateway.stop()


@pytest.fixture
async def traffic() -> AsyncIterator[Callable[[str, list[str]], Traffic]]:
    """`traffic(gw.url, paths).start()`: background load, stopped when the test ends."""
    running: list[Traffic] = []

    def make(base_url: str, paths: list[str]) -> Traffic:
        found = Traffic(base_url, paths)
        running.append(found)
        return found

    yield make
    for item in running:
        await item.stop()
