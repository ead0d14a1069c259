"""Every page in headless Chromium against `kairos serve` with real traffic: clean, live, themed."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from kairos_dashboard_testkit import (
    DESKTOP,
    PHONE,
    PageLog,
    dashboard_url,
    gateway_config,
    screenshot,
)
from playwright.async_api import expect

from kairos_core.testing import echo_app

PAGES = ("overview", "routes", "backends", "plugins", "config")
IDLE = re.compile(r"^(0\.00|—)$")


async def metric(page: Any, key: str) -> str:
    """The text of one live figure (`data-metric` attribute)."""
    return str(await page.text_content(f"[data-metric='{key}']")).strip()


async def test_pages_under_traffic_are_live_clean_and_fit_every_screen(
    start_gateway, backend_factory, traffic, chromium
):
    backends = [await backend_factory(echo_app(f"shop-{i}")) for i in (1, 2)]
    gateway = await start_gateway(gateway_config([b.url for b in backends]))
    page = await chromium.new_page()
    log = PageLog()
    log.watch(page)
    await page.goto(dashboard_url(gateway.admin_url))
    await expect(page.locator("#connection")).to_have_text("live")
    await expect(page.locator("[data-metric='requests']")).to_have_text("0")

    # Figures on the overview follow the traffic.
    load = traffic(gateway.url, ["/catalog/items", "/orders/7", "/catalog/x"])
    load.start(per_second=50, seconds=60)
    seen: set[str] = set()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and len({s for s in seen if not IDLE.match(s)}) < 3:
        seen.add(await metric(page, "rps"))
        await asyncio.sleep(0.25)
    assert len({s for s in seen if not IDLE.match(s)}) >= 3, seen  # moving, and not zero
    assert int((await metric(page, "requests")).replace(",", "")) > 0
    assert re.match(r"^[\d.]+ (µs|ms|s)$", await metric(page, "p95"))
    assert await metric(page, "status") == "ok"
    assert re.match(r"^\d+\.\d+\.\d+", await metric(page, "version"))
    assert await page.locator(".uplot").count() == 3

    # Every page: its content, both themes, desktop and phone, nothing wider than the screen.
    for name in PAGES:
        await page.goto(dashboard_url(gateway.admin_url, name))
        await expect(page.locator(f"#nav a[data-page='{name}']")).to_have_attribute(
            "aria-current", "page"
        )
        await expect_content(page, name)
        for scheme in ("light", "dark"):
            await page.emulate_media(color_scheme=scheme)
            for viewport, size in (("desktop", DESKTOP), ("phone", PHONE)):
                await page.set_viewport_size(size)
                await page.wait_for_timeout(100)  # charts follow the new width
                width = await page.evaluate("document.documentElement.scrollWidth")
                assert width <= size["width"], f"{name} overflows a {viewport} screen ({width}px)"
                await screenshot(page, f"{name}-{scheme}-{viewport}")
        await page.set_viewport_size(DESKTOP)
        await page.emulate_media(color_scheme="light")
    await load.stop()
    assert load.statuses.get(200, 0) > 0

    # The theme toggle wins over the system preference, and is remembered.
    background = "getComputedStyle(document.body).backgroundColor"
    light = await page.evaluate(background)
    await page.emulate_media(color_scheme="dark")
    assert await page.evaluate(background) != light
    await page.click("#theme-toggle")
    assert await page.evaluate(background) == light
    await page.reload()
    await expect(page.locator("#connection")).to_have_text("live")
    assert await page.evaluate(background) == light
    assert await page.text_content("#theme-toggle") == "Dark"
    log.assert_clean()


async def expect_content(page: Any, name: str) -> None:
    """What each page must show once its data arrived."""
    if name == "overview":
        await expect(page.locator("[data-metric='uptime']")).not_to_have_text("—")
    elif name == "routes":
        row = page.locator("tr[data-route='orders']")
        await expect(row).to_contain_text("/orders/{id}")
        await expect(row).to_contain_text("GET")
        requests = page.locator("tr[data-route='catalog'] [data-field='requests']")
        await expect(requests).not_to_have_text(re.compile(r"^(0|—)$"))
    elif name == "backends":
        await expect(page.locator("[data-field='status'] .badge.ok")).to_have_count(2)
        await expect(page.locator("[data-pool-latency]")).to_contain_text("p95")
        latency = page.locator("[data-field='latency']").filter(has_text=" / ")
        await expect(latency.first).to_be_visible()  # a backend's own p50 / p95
    elif name == "plugins":
        await expect(page.locator("tr[data-plugin='dashboard']")).to_contain_text("enabled")
    elif name == "config":
        await expect(page.locator("#config-text")).to_contain_text('"catalog"')
