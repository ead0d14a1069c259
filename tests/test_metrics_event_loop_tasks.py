"""kairos_event_loop_tasks: the gateway's asyncio task count, read at scrape time."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from aiohttp import web

from kairos_core.testing import GatewayProcess

HELD = 12


def slow_app(release: asyncio.Event) -> web.Application:
    async def hold(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="done")

    application = web.Application()
    application.router.add_get("/{tail:.*}", hold)
    return application


async def tasks(session: aiohttp.ClientSession, admin_url: str) -> float:
    async with session.get(admin_url + "/metrics") as response:
        text = await response.text()
    lines = [line for line in text.splitlines() if line.startswith("kairos_event_loop_tasks ")]
    assert len(lines) == 1, "one unlabelled series"
    return float(lines[0].rsplit(" ", 1)[1])


async def test_task_gauge_follows_requests_in_flight(backend_factory, tmp_path: Path) -> None:
    release = asyncio.Event()
    backend = await backend_factory(slow_app(release))
    path = tmp_path / "gw.yaml"
    path.write_text(
        "listeners: [{host: 127.0.0.1, port: 0}]\nadmin: {port: 0}\n"
        "observability: {access_log: {enabled: false}}\n"
        f"routes: [{{prefix: /, upstream: {{backends: [{{url: '{backend.url}'}}]}}}}]\n"
    )
    gateway = await GatewayProcess(["--config", str(path)]).start()
    try:
        assert gateway.admin_url is not None
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            idle = await tasks(session, gateway.admin_url)
            assert 1 <= idle < 100  # the scrape's own handler at least; no runaway count

            clients = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

            async def one() -> str:
                async with clients.get(gateway.url + "/held") as response:
                    return await response.text()

            held = [asyncio.create_task(one()) for _ in range(HELD)]
            for _ in range(100):
                busy = await tasks(session, gateway.admin_url)
                if busy >= idle + HELD:
                    break
                await asyncio.sleep(0.05)
            assert busy >= idle + HELD  # at least one task per request in flight
            release.set()
            assert await asyncio.gather(*held) == ["done"] * HELD
            await clients.close()  # kept-alive client connections hold a task each too
            for _ in range(100):
                after = await tasks(session, gateway.admin_url)
                if after <= idle + 2:
                    break
                await asyncio.sleep(0.05)
            assert after <= idle + 2  # request and connection tasks are gone again
    finally:
        await gateway.stop()
