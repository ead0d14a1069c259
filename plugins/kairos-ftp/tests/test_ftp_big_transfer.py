"""Large transfers keep every byte and flat memory (1 GiB under `nox -s slow`)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from ftp_testkit import connect, random_file

BLOCK = 1024 * 1024


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


async def _round_trip(gw: Any, ftp_root: Path, tmp_path: Path, size: int) -> int:
    """Download then upload `size` bytes through the gateway; return the peak RSS growth."""
    digest = random_file(ftp_root / "big.bin", size)
    baseline = _rss()
    peak = baseline
    running = True

    async def sample() -> None:
        nonlocal peak
        while running:
            peak = max(peak, _rss())
            await asyncio.sleep(0.02)

    def transfer() -> tuple[str, str]:
        ftp = connect(gw.port)
        down = hashlib.sha256()
        sink = tmp_path / "down.bin"
        with sink.open("wb") as out:

            def keep(chunk: bytes) -> None:
                down.update(chunk)
                out.write(chunk)

            ftp.retrbinary("RETR big.bin", keep, blocksize=BLOCK)
        with sink.open("rb") as handle:
            ftp.storbinary("STOR back.bin", handle, blocksize=BLOCK)
        ftp.quit()
        sink.unlink()
        return down.hexdigest(), digest

    sampler = asyncio.create_task(sample())
    try:
        downloaded, expected = await asyncio.to_thread(transfer)
    finally:
        running = False
        await sampler
    assert downloaded == expected
    uploaded = hashlib.sha256()
    with (ftp_root / "back.bin").open("rb") as handle:
        while chunk := handle.read(4 * BLOCK):
            uploaded.update(chunk)
    assert uploaded.hexdigest() == expected
    return peak - baseline


async def test_large_round_trip_keeps_memory_flat(
    ftp_server: Any, ftp_gateway: Any, ftp_root: Path, tmp_path: Path
) -> None:
    gw = await ftp_gateway([ftp_server.url])
    size = 96 * 1024 * 1024
    growth = await _round_trip(gw, ftp_root, tmp_path, size)
    assert growth < 48 * 1024 * 1024  # buffers, not the file (client and server share the process)


@pytest.mark.slow
async def test_one_gibibyte_round_trip(
    ftp_server: Any, ftp_gateway: Any, ftp_root: Path, tmp_path: Path
) -> None:
    size = int(os.environ.get("KAIROS_BIG_TRANSFER", str(1024**3)))
    gw = await ftp_gateway([ftp_server.url])
    growth = await _round_trip(gw, ftp_root, tmp_path, size)
    assert growth < 64 * 1024 * 1024
