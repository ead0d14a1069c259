"""Live changes reach the page: a backend stopped and restarted; rate-limit and cache figures."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from kairos_dashboard_testkit import PageLog, dashboard_url, gateway_config, installed, screenshot
from playwright.async_api import expect

from kairos_core.testing import echo_app


async def open_page(context: Any, admin_url: str, name: str) -> tuple[Any, PageLog]:
    """A tab on one dashboard page, watched for problems, once the live stream runs."""
    page = await context.new_page()
    log = PageLog()
    log.watch(page)
    await page.goto(dashboard_url(admin_url, name))
    await page.wait_for_selector("#connection:text('live')")
    return page, log


def status_of(page: Any, backend: str) -> Any:
    """The status badge of one backend of the `shop` pool."""
    return page.locator(f"tr[data-backend='shop/{backend}'] [data-field='status'] .badge")


async def test_stopped_backend_shows_down_then_up_again(chromium, start_gateway, backend_factory):
    first, second = [await backend_factory(echo_app(f"shop-{i}")) for i in (1, 2)]
    gateway = await start_gateway(gateway_config([first.url, second.url]))
    page, log = await open_page(chromium, gateway.admin_url, "backends")
    await expect(page.locator("[data-field='status'] .badge.ok")).to_have_count(2)
    await second.stop()
    stopped_at = time.monotonic()
    await status_of(page, "shop-2").filter(has_text="down").wait_for(timeout=10_000)
    shown_after = time.monotonic() - stopped_at
    assert await status_of(page, "shop-1").inner_text() == "up"
    assert "bad" in str(await status_of(page, "shop-2").get_attribute("class"))
    await screenshot(page, "backends-one-down-light-desktop")

    await backend_factory(echo_app("shop-2"), port=second.port)  # back on the same port
    await status_of(page, "shop-2").filter(has_text="up").wait_for(timeout=10_000)
    log.assert_clean()
    print(f"backend shown down {shown_after:.2f}s after it stopped")


@pytest.mark.skipif(
    not (installed("kairos_ratelimit") and installed("kairos_cache")),
    reason="needs kairos-ratelimit and kairos-cache installed next to the dashboard",
)
async def test_rate_limit_rejections_and_cache_hit_ratio(
    chromium, start_gateway, backend_factory, traffic
):
    backend = await backend_factory(echo_app("shop-1"))
    config = gateway_config([backend.url])
    config["routes"] += [
        {
            "name": "limited",
            "prefix": "/limited",
            "upstream": "shop",
            "plugins": [{"name": "rate-limit", "config": {"limits": [{"rate": "5/s"}]}}],
        },
        {
            "name": "cached",
            "prefix": "/cached",
            "upstream": "shop",
            "plugins": [{"name": "cache", "config": {"default_ttl": 60}}],
        },
    ]
    gateway = await start_gateway(config)
    page, log = await open_page(chromium, gateway.admin_url, "plugins")
    await page.wait_for_selector("[data-metric='cache-hit-ratio']")
    load = traffic(gateway.url, ["/limited/a", "/cached/a"]).start(per_second=60, seconds=20)
    rejected_rate = page.locator("[data-metric='ratelimit-rejected-rate']")
    await expect(rejected_rate).not_to_have_text(re.compile(r"^(0\.00|—)$"), timeout=10_000)
    await load.stop()
    limited = load.statuses.get(429, 0)
    assert limited > 0, load.statuses
    cached_misses = 1  # the first request of /cached/a; every later one is a hit
    cached_total = load.sent // 2
    expected_ratio = f"{(cached_total - cached_misses) / cached_total * 100:.1f}%"
    await expect(page.locator("[data-metric='ratelimit-limited']")).to_have_text(f"{limited:,}")
    await expect(page.locator("[data-metric='cache-hit-ratio']")).to_have_text(expected_ratio)
    assert await page.text_content("[data-metric='cache-misses']") == "1"
    await screenshot(page, "plugins-with-traffic-light-desktop")
    log.assert_clean()
