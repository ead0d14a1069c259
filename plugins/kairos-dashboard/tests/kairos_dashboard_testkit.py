"""Helpers for the dashboard tests: the gateway config, background traffic, page problems."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from kairos_core.testing import require_service

CHROMIUM = os.environ.get("KAIROS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "dashboard"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}


def require_browser() -> None:
    """Skip without Chromium or playwright (a failure under KAIROS_REQUIRE_SERVICES=1)."""
    require_service(
        "Chromium", Path(CHROMIUM).is_file(), "apt-get install chromium (or set KAIROS_CHROMIUM)"
    )
    require_service(
        "playwright", importlib.util.find_spec("playwright") is not None, "pip install playwright"
    )


@dataclass
class PageLog:
    """What went wrong while a page ran: console errors, failed and refused requests."""

    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    error_responses: list[str] = field(default_factory=list)

    def watch(self, page: Any) -> None:
        """Record the page's problems from now on."""
        page.on(
            "console",
            lambda m: m.type == "error" and self.console_errors.append(f"{m.text} ({m.location})"),
        )
        page.on("pageerror", lambda e: self.console_errors.append(f"uncaught: {e}"))
        page.on("requestfailed", lambda r: self.failed_requests.append(f"{r.url}: {r.failure}"))
        page.on(
            "response",
            lambda r: r.status >= 400 and self.error_responses.append(f"{r.status} {r.url}"),
        )

    def assert_clean(self) -> None:
        """No console error, no failed request, no error response."""
        assert self.console_errors == [], self.console_errors
        assert self.failed_requests == [], self.failed_requests
        assert self.error_responses == [], self.error_responses


def gateway_config(backends: list[str], **admin: Any) -> dict[str, Any]:
    """Two routes on one pool with fast active health checks, plus the dashboard."""
    return {
        "listeners": [{"host": "127.0.0.1", "port": 0}],
        "admin": {"host": "127.0.0.1", "port": 0, "plugins": ["dashboard"], **admin},
        "upstreams": {
            "shop": {
                "backends": [
                    {"name": f"shop-{i + 1}", "url": url} for i, url in enumerate(backends)
                ],
                "health_check": {
                    "active": {
                        "path": "/health",
                        "interval": 0.3,
                        "timeout": 0.5,
                        "unhealthy_threshold": 1,
                        "healthy_threshold": 1,
                        "jitter": 0,
                    }
                },
            }
        },
        "routes": [
            {"name": "catalog", "prefix": "/catalog", "upstream": "shop"},
            {"name": "orders", "path": "/orders/{id}", "methods": ["GET"], "upstream": "shop"},
        ],
        "observability": {"access_log": {"enabled": False}},
    }


def installed(module: str) -> bool:
    """Whether an optional plugin (rate limiting, cache) is installed next to the dashboard."""
    return importlib.util.find_spec(module) is not None


def write_config(folder: Path, config: dict[str, Any]) -> Path:
    """The config as the YAML file a user would write (reload reads it again)."""
    path = folder / "gateway.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class Traffic:
    """Real requests against the gateway from a background task, bounded in time and count."""

    def __init__(self, base_url: str, paths: list[str], limit: int = 20_000) -> None:
        self.base_url = base_url
        self.paths = paths
        self.limit = limit
        self.sent = 0
        self.statuses: dict[int, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def _run(self, per_second: float, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        async with aiohttp.ClientSession() as session:
            while not self._stop.is_set() and time.monotonic() < deadline:
                if self.sent >= self.limit:
                    break
                path = self.paths[self.sent % len(self.paths)]
                self.sent += 1
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(self.base_url + path) as response:
                        await response.read()
                        self.statuses[response.status] = self.statuses.get(response.status, 0) + 1
                await asyncio.sleep(1 / per_second)

    def start(self, per_second: float = 40, seconds: float = 30) -> Traffic:
        """Send about `per_second` requests a second for at most `seconds`."""
        self._task = asyncio.create_task(self._run(per_second, seconds))
        return self

    async def stop(self) -> None:
        """Stop sending and wait for the last request."""
        self._stop.set()
        if self._task is not None:
            await self._task


async def screenshot(page: Any, name: str) -> Path:
    """Keep a full-page screenshot under test-artifacts/dashboard/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


def dashboard_url(admin_url: str, page: str = "overview") -> str:
    """One page of the dashboard, with half-second updates to keep the tests short."""
    return f"{admin_url}/dashboard/?interval=0.5#/{page}"
