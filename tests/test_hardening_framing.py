"""Request smuggling and framing: the corpus under both aiohttp parsers, never forwarded."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp.http_parser
import pytest
import yaml
from core_framing_corpus import CASES, FramingCase
from core_raw_http import RecordingBackend, exchange

from kairos_core.testing import running_gateway
from kairos_core.testing.process import GatewayProcess


def corpus_config(backend_url: str, engine: str = "lean") -> dict[str, Any]:
    """One catch-all route to the recording backend, with small head limits."""
    return {
        "server": {
            "max_header_size": 1024,
            "max_headers": 20,
            "header_timeout": 0.5,
            "engine": engine,
        },
        "routes": [
            {
                "prefix": "/",
                "upstream": {"backends": [{"url": backend_url}]},
                "timeouts": {"read": 0.5},
            }
        ],
    }


async def run_case(
    port: int, case: FramingCase, backend: RecordingBackend, victim: RecordingBackend
) -> str | None:
    """Send one case; return what went wrong, or None."""
    raw = case.raw.replace(b"{victim}", f"127.0.0.1:{victim.port}".encode())
    before, bodies = len(backend.received), len(backend.bodies)
    answer = await exchange("127.0.0.1", port, raw)
    await asyncio.sleep(0.01)  # anything forwarded would have reached the backend by now
    problems = []
    if answer.status not in case.statuses:
        problems.append(f"status {answer.status} not in {set(case.statuses)}")
    forwarded = bytes(backend.received[before:])
    if answer.status == 200:
        if backend.bodies[bodies:] != [case.body]:
            problems.append(f"backend got bodies {backend.bodies[bodies:]!r}")
        problems.extend(
            f"{absent!r} was passed on" for absent in case.absent if absent in forwarded
        )
    else:
        if case.partial and backend.bodies[bodies:]:
            problems.append(f"backend got complete requests {backend.bodies[bodies:]!r}")
        elif forwarded and not case.partial:
            problems.append(f"forwarded {forwarded[:200]!r}")
        if not answer.closed:
            problems.append("connection left open after the error")
        head = answer.data.partition(b"\r\n\r\n")[0].lower()
        if head.count(b"\r\nconnection:") > 1 or b"connection: keep-alive" in head:
            problems.append("the refusal's Connection header is not a single `close`")
    if victim.connections:
        problems.append("the gateway connected to the authority of the target")
    if problems:
        return f"{case.name}: {'; '.join(problems)} (answer {answer.data[:120]!r})"
    return None


async def run_corpus(port: int, backend: RecordingBackend, victim: RecordingBackend) -> None:
    """Every case, one connection each, then a good request on a fresh connection."""
    failures = []
    for case in CASES:
        failure = await run_case(port, case, backend, victim)
        if failure is not None:
            failures.append(failure)
    good = await exchange(
        "127.0.0.1", port, b"GET /ok HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    )
    if good.status != 200:
        failures.append(f"good request after the corpus: {good.data[:200]!r}")
    assert not failures, "\n".join(failures)


@pytest.fixture
async def backends() -> AsyncIterator[tuple[RecordingBackend, RecordingBackend]]:
    async with RecordingBackend() as backend, RecordingBackend() as victim:
        yield backend, victim


@pytest.mark.parametrize("engine", ["lean", "aiohttp"])
async def test_corpus_with_the_c_parser(backends, engine: str) -> None:
    from aiohttp._http_parser import HttpRequestParser as CParser  # type: ignore[import-not-found]

    assert aiohttp.http_parser.HttpRequestParser is CParser
    backend, victim = backends
    async with running_gateway(corpus_config(backend.url, engine), admin=False) as gw:
        await run_corpus(int(gw.url.rsplit(":", 1)[1]), backend, victim)


async def test_corpus_with_the_python_parser(backends, tmp_path: Path) -> None:
    env = {"AIOHTTP_NO_EXTENSIONS": "1"}
    check = "import aiohttp.http_parser as p; assert p.HttpRequestParser is p.HttpRequestParserPy"
    probe = await asyncio.create_subprocess_exec(
        sys.executable, "-c", check, env={**os.environ, **env}
    )
    assert await probe.wait() == 0, "AIOHTTP_NO_EXTENSIONS=1 did not select the Python parser"
    backend, victim = backends
    config = corpus_config(backend.url)
    config["listeners"] = [{"host": "127.0.0.1", "port": 0}]
    config["admin"] = {"enabled": False}
    path = tmp_path / "kairos.yaml"
    path.write_text(yaml.safe_dump(config))
    gateway = await GatewayProcess(["--config", str(path)], env=env).start()
    try:
        await run_corpus(int(gateway.url.rsplit(":", 1)[1]), backend, victim)
    finally:
        await gateway.stop()
