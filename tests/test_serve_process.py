"""`kairos serve` as a real process: banner URLs, graceful shutdown, SIGHUP reload, workers."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from kairos_core.testing import GatewayProcess
from kairos_core.testing.process import free_port


def write_config(
    path: Path, backend_url: str, route_path: str = "/", port: int = 0, extra: str = ""
) -> Path:
    path.write_text(
        f"listeners: [{{host: 127.0.0.1, port: {port}}}]\n"
        "admin: {port: 0}\n"
        f"routes:\n  - prefix: {route_path}\n    upstream: {{backends: [{{url: '{backend_url}'}}]}}\n"
        + extra
    )
    return path


def slow_app(started: list[str] | None = None) -> web.Application:
    async def slow(request: web.Request) -> web.Response:
        if started is not None:
            started.append(request.path)
        await asyncio.sleep(float(request.query.get("s", "0")))
        return web.Response(text="done")

    app = web.Application()
    app.router.add_get("/{tail:.*}", slow)
    return app


async def test_upstream_mode_and_every_printed_url(echo_backend, http) -> None:
    gateway = await GatewayProcess(
        ["--upstream", echo_backend.url, "--port", "0", "--admin", "127.0.0.1:0"]
    ).start()
    try:
        async with http.get(gateway.url + "/api/item?id=1") as response:
            assert response.status == 200
            assert (await response.json())["raw_path"] == "/api/item?id=1"
        assert gateway.admin_url is not None
        async with http.get(gateway.admin_url + "/health") as response:
            assert response.status == 200
    finally:
        assert await gateway.stop() == 0


async def test_graceful_shutdown_finishes_in_flight_requests(backend_factory, tmp_path) -> None:
    started: list[str] = []
    backend = await backend_factory(slow_app(started))
    config = write_config(tmp_path / "gw.yaml", backend.url)
    gateway = await GatewayProcess(["--config", str(config)]).start()
    async with aiohttp.ClientSession() as session:
        pending = asyncio.create_task(session.get(gateway.url + "/?s=1.0"))
        while not started:
            await asyncio.sleep(0.02)
        gateway.signal(signal.SIGTERM)
        response = await pending
        assert response.status == 200
        assert await response.text() == "done"
        code = await gateway.stop()
    assert code == 0
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as session, session.get(gateway.url + "/"):
            pass


async def test_sighup_reloads_and_a_bad_file_keeps_the_old_config(
    backend_factory, echo_backend, tmp_path
) -> None:
    config = write_config(tmp_path / "gw.yaml", echo_backend.url, "/old")
    gateway = await GatewayProcess(["--config", str(config)]).start()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(gateway.url + "/old") as response:
                assert response.status == 200
            write_config(config, echo_backend.url, "/new")
            gateway.signal(signal.SIGHUP)
            for _ in range(50):
                async with session.get(gateway.url + "/new") as response:
                    if response.status == 200:
                        break
                await asyncio.sleep(0.1)
            assert response.status == 200
            config.write_text("routes: [this is not valid\n")
            gateway.signal(signal.SIGHUP)
            async with asyncio.timeout(10):
                while not any("reload failed" in line for line in gateway.stderr_lines):
                    await asyncio.sleep(0.05)
            async with session.get(gateway.url + "/new") as response:
                assert response.status == 200
    finally:
        await gateway.stop()


async def test_bad_config_exits_1_with_the_problem(tmp_path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("routes:\n  - path: /a\n    upstream: nowhere\n")
    with pytest.raises(RuntimeError) as info:
        await GatewayProcess(["--config", str(config)]).start()
    assert f"{config}:3: routes[0].upstream: unknown upstream 'nowhere'" in str(info.value)
    assert "Traceback" not in str(info.value)


async def test_missing_plugin_stops_startup_with_its_name(tmp_path) -> None:
    config = tmp_path / "plug.yaml"
    config.write_text(
        "routes:\n  - path: /a\n    upstream: {backends: [{url: 'http://127.0.0.1:9'}]}\n"
        "    plugins: [{name: no-such-plugin}]\n"
    )
    with pytest.raises(
        RuntimeError,
        match=r"plug.yaml:4: routes\[0\].plugins\[0\].name: plugin 'no-such-plugin' is not installed",
    ):
        await GatewayProcess(["--config", str(config)]).start()


async def test_port_in_use_is_a_clear_error(echo_backend) -> None:
    with pytest.raises(RuntimeError, match=r"cannot start: .*ddress already in use"):
        await GatewayProcess(
            ["--upstream", echo_backend.url, "--port", str(echo_backend.port), "--admin", "off"]
        ).start()


async def test_workers_share_the_port_and_a_dead_worker_is_replaced(echo_backend, tmp_path) -> None:
    port = free_port()
    config = write_config(tmp_path / "gw.yaml", echo_backend.url, port=port)
    gateway = await GatewayProcess(["--config", str(config), "--workers", "2"]).start()
    try:
        assert gateway.admin_url is not None
        async with aiohttp.ClientSession() as session:
            async with session.get(gateway.admin_url + "/health") as response:
                health = await response.json()
            assert health["workers_alive"] == 2
            assert health["uptime_seconds"] >= 0
            pids = [w["pid"] for w in health["worker_processes"]]
            os.kill(pids[0], signal.SIGKILL)
            for _ in range(100):
                await asyncio.sleep(0.1)
                async with session.get(gateway.admin_url + "/health") as response:
                    health = await response.json()
                if health["workers_alive"] == 2 and health["worker_processes"][0]["pid"] != pids[0]:
                    break
            assert health["workers_alive"] == 2
            assert health["worker_processes"][0]["restarts"] == 1
            assert health["worker_processes"][1]["pid"] == pids[1]
            for _ in range(20):
                async with session.get(
                    f"http://127.0.0.1:{port}/x", headers={"Connection": "close"}
                ) as response:
                    assert response.status == 200
            async with session.get(gateway.admin_url + "/ready") as response:
                assert (await response.json())["ready"] is True
    finally:
        assert await gateway.stop() == 0


MAIN_SCRIPT = """
import multiprocessing, os, sys
from pathlib import Path

log = Path(sys.argv[1])
with log.open("a") as f:  # what re-running this script in a child would show
    f.write(f"ran in {os.getpid()}\\n")

if __name__ == "__main__":
    from kairos_core.workers import _main_script_not_rerun

    context = multiprocessing.get_context("forkserver")
    for guarded in (False, True):
        done = log.with_name(f"child-{guarded}")
        child = context.Process(target=done.write_text, args=("started",))
        if guarded:
            with _main_script_not_rerun():
                child.start()
        else:
            child.start()
        child.join()
        print(guarded, child.exitcode, done.read_text(), len(log.read_text().splitlines()))
"""


def test_workers_do_not_rerun_the_main_script(tmp_path: Path) -> None:
    """A worker started by `kairos` does not import the whole CLI again (~15 MiB per worker)."""
    script = tmp_path / "main_script.py"
    script.write_text(MAIN_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "ran.log")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    # Unguarded, multiprocessing runs the script again in the child (2 lines: parent, child);
    # guarded, the child starts just as well and the log stays at 2 lines.
    assert result.stdout.splitlines() == ["False 0 started 2", "True 0 started 2"]


async def test_uvloop_is_used_when_installed(echo_backend) -> None:
    gateway = await GatewayProcess(
        ["--upstream", echo_backend.url, "--port", "0", "--admin", "off"]
    ).start()
    await gateway.stop()
    assert any("event loop: uvloop" in line for line in gateway.stderr_lines)
