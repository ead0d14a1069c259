"""kairos_core.compiled: which modules run compiled, and which are older than their source."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import sysconfig
import types
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import pytest

from kairos_core.compiled import compiled_modules, stale_modules
from kairos_core.process import report_compiled
from kairos_core.testing.process import GatewayProcess

SUFFIX = sysconfig.get_config_var("EXT_SUFFIX")


@pytest.fixture
def fake_compiled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A module `kairos_fake.hot` whose file is an extension next to its `.py` source."""
    source = tmp_path / "hot.py"
    built = tmp_path / f"hot{SUFFIX}"
    source.write_text("x = 1\n")
    built.write_bytes(b"not really an extension")
    module = types.ModuleType("kairos_fake.hot")
    module.__file__ = str(built)
    monkeypatch.setitem(sys.modules, "kairos_fake.hot", module)
    return source, built


def test_a_loaded_extension_module_counts_as_compiled(fake_compiled: tuple[Path, Path]) -> None:
    _, built = fake_compiled
    assert compiled_modules()["kairos_fake.hot"] == built


def test_other_packages_and_pure_modules_do_not_count(fake_compiled: tuple[Path, Path]) -> None:
    found = compiled_modules()
    assert "kairos_core.gateway" not in found  # imported, but from its .py file
    assert all(name.startswith("kairos_") for name in found)


@pytest.mark.parametrize(("source_time", "built_time", "stale"), [(2, 1, True), (1, 2, False)])
def test_a_compiled_module_older_than_its_source_is_stale(
    fake_compiled: tuple[Path, Path],
    caplog: pytest.LogCaptureFixture,
    source_time: int,
    built_time: int,
    stale: bool,
) -> None:
    source, built = fake_compiled
    os.utime(source, (source_time * 1_000_000, source_time * 1_000_000))
    os.utime(built, (built_time * 1_000_000, built_time * 1_000_000))
    assert ("kairos_fake.hot" in stale_modules()) is stale
    with caplog.at_level(logging.INFO, logger="kairos"):
        report_compiled()
    assert "modules compiled with mypyc" in caplog.text
    assert ("older than their source" in caplog.text) is stale
    assert ("kairos_fake.hot" in caplog.text) is stale


async def test_kairos_serve_reports_the_compiled_hot_path(
    echo_backend: Any, tmp_path: Path, compile_tool: ModuleType
) -> None:
    """A real `kairos serve` with the jwt and rate-limit plugins: under `nox -s compiled` it
    names every module the tool compiles (plugins' included); a pure tree says nothing."""
    import kairos_core.proxy  # noqa: F401 - loaded the way the gateway loads it

    compiled = "kairos_core.proxy" in compiled_modules()
    config = tmp_path / "gw.yaml"
    config.write_text(
        "listeners: [{host: 127.0.0.1, port: 0}]\nadmin: {enabled: false}\n"
        "routes:\n  - path: /x\n"
        f"    upstream: {{backends: [{{url: '{echo_backend.url}'}}]}}\n"
        "    plugins:\n"
        "      - {name: jwt, config: {keys: [{secret: 'a-test-secret-of-32-bytes-or-more!!'}]}}\n"
        "      - {name: rate-limit, config: {limits: [{rate: 100/s}]}}\n"
    )
    gateway = await GatewayProcess(["--config", str(config)]).start()
    try:
        lines = [line for line in gateway.stderr_lines if "compiled with mypyc" in line]
    finally:
        await gateway.stop()
    if compiled:
        expected = sum(len(modules) for modules in compile_tool.HOT_PATH.values())
        assert len(lines) == 1 and f"hot path: {expected} modules compiled" in lines[0], lines
        assert not any("older than their source" in line for line in gateway.stderr_lines)
    else:
        assert lines == []


async def _exception_state() -> BaseException | None:
    return sys.exc_info()[1]


async def test_failed_requests_keep_the_connection_and_leave_no_exception_state(
    kairos_gateway: Any, echo_backend: Any, dying_backend: str, http: aiohttp.ClientSession
) -> None:
    """mypyc gets the exception state wrong around an `await` in `finally` or `except`
    (docs/architecture.md): after refused connections and backends dying mid-body, many at
    once, an error answer keeps its connection, the next requests succeed, and a new task sees
    no exception being handled."""
    gw = await kairos_gateway(
        {
            "routes": [
                {"path": "/dead", "upstream": {"backends": [{"url": "http://127.0.0.1:1"}]}},
                {"path": "/half", "upstream": {"backends": [{"url": dying_backend}]}},
                {"path": "/ok", "upstream": {"backends": [{"url": echo_backend.url}]}},
            ]
        }
    )

    async def status(path: str) -> int:
        try:
            async with http.get(gw.url + path) as response:
                await response.read()
                return response.status
        except aiohttp.ClientPayloadError:
            return -1  # the cut body, as the client must see it

    host, port = gw.url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    for _ in range(3):  # an error answer keeps the connection: nothing was re-raised late
        writer.write(b"GET /dead HTTP/1.1\r\nHost: a\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 502 "), head
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
    writer.close()
    statuses = await asyncio.gather(*(status(p) for p in ["/dead", "/half"] * 10))
    assert set(statuses[0::2]) <= {502, 503}, statuses
    assert set(statuses[1::2]) == {-1}, statuses
    assert await asyncio.gather(*(status("/ok") for _ in range(10))) == [200] * 10
    assert await asyncio.create_task(_exception_state()) is None
