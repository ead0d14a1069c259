"""Large bodies stream through `kairos serve` both ways with flat memory (peak RSS measured)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from aiohttp import web

from kairos_core.testing import GatewayProcess

CHUNK = b"k" * (1 << 20)
CI_SIZE = 256 * (1 << 20)
RSS_BUDGET = 64 * (1 << 20)


def peak_rss(pid: int) -> int:
    """VmHWM (peak resident set) of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def current_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def sink_and_source_app(size: int) -> web.Application:
    """A backend that hashes uploads as they stream in and streams `size` bytes out."""

    async def upload(request: web.Request) -> web.Response:
        digest = hashlib.sha256()
        total = 0
        async for chunk in request.content.iter_any():
            digest.update(chunk)
            total += len(chunk)
        return web.json_response({"bytes": total, "sha256": digest.hexdigest()})

    async def download(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = size
        await response.prepare(request)
        for _ in range(size // len(CHUNK)):
            await response.write(CHUNK)
        await response.write_eof()
        return response

    app = web.Application(client_max_size=0)
    app.router.add_post("/upload", upload)
    app.router.add_get("/download", download)
    return app


async def run_transfer(backend_factory, http, tmp_path: Path, size: int) -> None:
    backend = await backend_factory(sink_and_source_app(size))
    config = tmp_path / "gw.yaml"
    config.write_text(
        "server: {max_body_size: 4GiB}\n"
        f"routes:\n  - prefix: /\n    upstream: {{backends: [{{url: '{backend.url}'}}]}}\n"
    )
    gateway = await GatewayProcess(
        ["--config", str(config), "--port", "0", "--admin", "off"]
    ).start()
    try:
        assert gateway.proc is not None
        pid = gateway.proc.pid
        baseline = current_rss(pid)

        async def body():
            for _ in range(size // len(CHUNK)):
                yield CHUNK

        expected = hashlib.sha256()
        for _ in range(size // len(CHUNK)):
            expected.update(CHUNK)
        async with http.post(gateway.url + "/upload", data=body(), timeout=None) as response:
            assert response.status == 200  # chunked: aiohttp's server reads it
            result = await response.json()
        assert result == {"bytes": size, "sha256": expected.hexdigest()}
        sized = {"Content-Length": str(size)}  # with a length: the lean server reads it
        async with http.post(
            gateway.url + "/upload", data=body(), headers=sized, timeout=None
        ) as response:
            assert response.status == 200
            result = await response.json()
        assert result == {"bytes": size, "sha256": expected.hexdigest()}

        received = hashlib.sha256()
        total = 0
        async with http.get(gateway.url + "/download", timeout=None) as response:
            assert response.status == 200
            async for chunk in response.content.iter_chunked(1 << 20):
                received.update(chunk)
                total += len(chunk)
        assert total == size
        assert received.hexdigest() == expected.hexdigest()
        growth = peak_rss(pid) - baseline
        assert growth < RSS_BUDGET, f"peak RSS grew by {growth / 2**20:.1f} MiB"
    finally:
        await gateway.stop()


async def test_large_upload_and_download_stream_with_flat_memory(
    backend_factory, http, tmp_path
) -> None:
    await run_transfer(backend_factory, http, tmp_path, CI_SIZE)


@pytest.mark.slow
async def test_one_gib_each_way(backend_factory, http, tmp_path) -> None:
    size = int(os.environ.get("KAIROS_BIG_TRANSFER", str(1 << 30)))
    await run_transfer(backend_factory, http, tmp_path, size)
