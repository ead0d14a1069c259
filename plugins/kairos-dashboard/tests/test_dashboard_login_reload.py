"""The admin token guards every figure; the reload button applies the file or shows why not."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import yaml
from kairos_dashboard_testkit import PageLog, dashboard_url, gateway_config, screenshot
from playwright.async_api import expect

from kairos_core.testing import echo_app

DATA_PATHS = ("/plugins", "/routes", "/upstreams", "/config", "/stream")


async def test_login_is_required_when_the_admin_token_is_set(
    chromium, start_gateway, backend_factory
):
    token = "dash-" + secrets.token_urlsafe(18)
    backend = await backend_factory(echo_app("shop-1"))
    gateway = await start_gateway(gateway_config([backend.url], token=token))
    page = await chromium.new_page()
    log = PageLog()
    log.watch(page)
    sockets: list[str] = []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    data_requests: list[tuple[str, str | None]] = []
    page.on(
        "request",
        lambda r: (
            r.url.split("?")[0].endswith(DATA_PATHS)
            and data_requests.append((r.url, r.headers.get("authorization")))
        ),
    )

    await page.goto(dashboard_url(gateway.admin_url))
    await expect(page.locator("#login")).to_be_visible()
    assert await page.locator("#view").inner_html() == ""  # no data before login
    assert "catalog" not in await page.content()
    assert sockets == []
    assert [auth for _, auth in data_requests] == [None]  # one probe, refused
    assert log.error_responses == [f"401 {gateway.admin_url}/plugins"]
    await screenshot(page, "login-light-desktop")

    await page.fill("#token", "not-the-token")
    await page.click("#login button[type=submit]")
    await expect(page.locator("#login-error")).to_contain_text("refused")
    assert await page.locator("#view").inner_html() == ""
    assert sockets == []

    await page.fill("#token", token)
    await page.click("#login button[type=submit]")
    await expect(page.locator("#connection")).to_have_text("live")
    await expect(page.locator("#login")).to_be_hidden()
    await expect(page.locator("[data-metric='version']")).not_to_have_text("—")
    assert all(token not in url for url in sockets)  # the token travels as a subprotocol
    assert all(auth == f"Bearer {token}" for _, auth in data_requests[2:])
    await page.goto(dashboard_url(gateway.admin_url, "routes"))
    await expect(page.locator("tr[data-route='catalog']")).to_be_visible()

    await page.reload()  # the token stays for this tab (sessionStorage)
    await expect(page.locator("#connection")).to_have_text("live")
    await expect(page.locator("tr[data-route='catalog']")).to_be_visible()

    await page.click("#logout")
    await expect(page.locator("#login")).to_be_visible()
    assert await page.locator("#view").inner_html() == ""
    assert await page.evaluate("sessionStorage.length") == 0
    assert log.console_errors and all("401" in e for e in log.console_errors), log.console_errors
    assert log.failed_requests == []
    assert all(r.startswith("401 ") for r in log.error_responses), log.error_responses


def edit_config(path: Path, change: Any) -> None:
    """Rewrite the gateway's YAML file with `change(config)` applied."""
    config = yaml.safe_load(path.read_text())
    change(config)
    path.write_text(yaml.safe_dump(config, sort_keys=False))


async def test_reload_button_applies_the_file_or_shows_the_error(
    chromium, start_gateway, backend_factory
):
    backend = await backend_factory(echo_app("shop-1"))
    gateway = await start_gateway(gateway_config([backend.url]))
    config_file = Path(gateway.args[gateway.args.index("--config") + 1])
    page = await chromium.new_page()
    log = PageLog()
    log.watch(page)
    await page.goto(dashboard_url(gateway.admin_url, "config"))
    config_text = page.locator("#config-text")
    await expect(config_text).to_contain_text('"catalog"')
    assert '"added"' not in await config_text.inner_text()

    edit_config(
        config_file,
        lambda c: c["routes"].append({"name": "added", "prefix": "/added", "upstream": "shop"}),
    )
    await page.click("#reload")
    result = page.locator("#reload-result")
    await expect(result).to_have_attribute("data-outcome", "ok")
    await expect(result).to_contain_text("Reloaded")
    await expect(config_text).to_contain_text('"added"')
    await page.goto(dashboard_url(gateway.admin_url, "routes"))
    await expect(page.locator("tr[data-route='added']")).to_be_visible()
    log.assert_clean()

    edit_config(config_file, lambda c: c["routes"][0].update(timeout="soon"))
    await page.goto(dashboard_url(gateway.admin_url, "config"))
    await page.click("#reload")
    await expect(result).to_have_attribute("data-outcome", "error")
    await expect(result).to_contain_text("routes[0]")
    await expect(result).to_contain_text("keeps serving")
    await expect(config_text).to_contain_text('"added"')  # the running config is unchanged
    await screenshot(page, "config-reload-refused-light-desktop")
    assert log.error_responses == [f"422 {gateway.admin_url}/config/reload"]
    assert all("422" in e for e in log.console_errors), log.console_errors
