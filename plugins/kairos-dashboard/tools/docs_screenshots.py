"""Make the screenshots in docs/plugins/img/ from a real gateway under varied real traffic.

Needs Chromium (Debian's `chromium`) and the plugin's test extra (playwright). Run from the
repository root with the plugin's venv (about a minute):

    python plugins/kairos-dashboard/tools/docs_screenshots.py
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "plugins" / "kairos-dashboard" / "tests"))

from kairos_dashboard_testkit import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    gateway_config,
    installed,
    write_config,
)

from kairos_core.testing import GatewayProcess, echo_app, start_backend  # noqa: E402

OUT = ROOT / "docs" / "plugins" / "img"
TRAFFIC_SECONDS = 45


def slow_echo(name: str, delay: float) -> web.Application:
    """An echo backend that takes about `delay` seconds (with jitter) to answer."""
    inner = echo_app(name)

    @web.middleware
    async def wait(request: web.Request, handler: Any) -> web.StreamResponse:
        await asyncio.sleep(random.uniform(0, 2 * delay))
        return await handler(request)

    inner.middlewares.append(wait)
    return inner


async def traffic(base_url: str, seconds: float) -> None:
    """A rate that swells and ebbs, a few server errors, rate-limited and cached paths."""
    paths = ["/catalog/items", "/catalog/items/7", "/orders/42", "/orders/7"]
    if installed("kairos_ratelimit"):
        paths.append("/limited/a")
    if installed("kairos_cache"):
        paths += ["/cached/a", "/cached/b"]
    started = time.monotonic()
    async with aiohttp.ClientSession() as session:

        async def one() -> None:
            headers = {"X-Echo-Status": "503"} if random.random() < 0.02 else {}
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(base_url + random.choice(paths), headers=headers) as r:
                    await r.read()

        pending: set[asyncio.Task[None]] = set()
        while (elapsed := time.monotonic() - started) < seconds:
            rate = 60 + 45 * math.sin(elapsed / 6)
            task = asyncio.create_task(one())
            pending.add(task)
            task.add_done_callback(pending.discard)
            await asyncio.sleep(1 / rate)
        await asyncio.gather(*pending)


async def main() -> None:
    from playwright.async_api import async_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    async with contextlib.AsyncExitStack() as stack:
        backends = [
            await stack.enter_async_context(start_backend(slow_echo(f"shop-{i}", d)))
            for i, d in ((1, 0.004), (2, 0.012), (3, 0.008))
        ]
        config = gateway_config([b.url for b in backends])
        if installed("kairos_ratelimit"):
            config["routes"].append(
                {
                    "name": "limited",
                    "prefix": "/limited",
                    "upstream": "shop",
                    "plugins": [{"name": "rate-limit", "config": {"limits": [{"rate": "5/s"}]}}],
                }
            )
        if installed("kairos_cache"):
            config["routes"].append(
                {
                    "name": "cached",
                    "prefix": "/cached",
                    "upstream": "shop",
                    "plugins": [{"name": "cache", "config": {"default_ttl": 5}}],
                }
            )
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        gateway = GatewayProcess(["--config", str(write_config(folder, config))])
        await gateway.start()
        stack.push_async_callback(gateway.stop)
        driver = await stack.enter_async_context(async_playwright())
        context = await driver.chromium.launch_persistent_context(
            folder / "profile",
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 800},
        )
        stack.push_async_callback(context.close)
        page = await context.new_page()
        base = f"{gateway.admin_url}/dashboard/"
        await page.goto(base + "#/overview")
        await traffic(gateway.url, TRAFFIC_SECONDS)
        await page.screenshot(path=str(OUT / "dashboard-overview-light.png"))

        await backends[1].stop()  # shop-2 goes away: the Backends page shows it down
        await page.emulate_media(color_scheme="dark")
        await page.goto(base + "#/backends")
        await page.locator("[data-field='status'] .badge.bad").first.wait_for()
        await traffic(gateway.url, 3)
        await page.screenshot(path=str(OUT / "dashboard-backends-dark.png"))

        await page.set_viewport_size({"width": 390, "height": 844})
        await page.goto(base + "#/routes")
        await page.locator("tr[data-route='orders']").wait_for()
        await traffic(gateway.url, 3)
        await page.screenshot(path=str(OUT / "dashboard-routes-phone-dark.png"))
    for path in sorted(OUT.glob("dashboard-*.png")):
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    asyncio.run(main())
