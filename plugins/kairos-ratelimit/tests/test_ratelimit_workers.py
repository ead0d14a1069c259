"""`kairos serve --workers 2` with the memory backend enforces one limit for the whole gateway."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from kairos_ratelimit.shared_memory import shm_dir

from kairos_core.testing import GatewayProcess

LIMIT = 6
REQUESTS = 24


def write_config(private_dir: Path, backend_url: str, share: bool) -> Path:
    limit = {
        "limits": [{"limit": LIMIT, "window": "1h", "algorithm": "sliding_window_counter"}],
        "share_across_workers": share,
    }
    config: dict[str, Any] = {
        "listeners": [{"host": "127.0.0.1", "port": 0}],
        "admin": {"enabled": False},
        "routes": [
            {
                "prefix": "/",
                "upstream": {"backends": [{"url": backend_url}]},
                "plugins": [{"name": "rate-limit", "config": limit}],
            }
        ],
    }
    path = private_dir / f"kairos-{share}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def segments_of(pid: int) -> list[Path]:
    """Shared memory files left behind by the gateway whose supervisor had `pid`."""
    return list(shm_dir().glob(f"kairos-rl-{pid}-*"))


async def allowed_count(url: str) -> int:
    """Send requests on fresh connections, so SO_REUSEPORT spreads them over the workers."""
    allowed = 0
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as http:
        for _ in range(REQUESTS):
            async with http.get(url + "/") as response:
                await response.read()
                allowed += response.status == 200
    return allowed


async def test_two_workers_share_one_memory_limit(private_dir: Path, echo_backend) -> None:
    shared = GatewayProcess(
        ["--config", str(write_config(private_dir, echo_backend.url, True)), "--workers", "2"]
    )
    alone = GatewayProcess(
        ["--config", str(write_config(private_dir, echo_backend.url, False)), "--workers", "2"]
    )
    try:
        await asyncio.gather(shared.start(), alone.start())
        assert await allowed_count(shared.url) == LIMIT
        # control: per-worker counters let each worker allow LIMIT, which shows that the
        # requests did reach both workers
        assert await allowed_count(alone.url) > LIMIT
    finally:
        await shared.stop()
        await alone.stop()
    assert shared.proc is not None
    assert not segments_of(shared.proc.pid)  # the last worker to leave removed them
