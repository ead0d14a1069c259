"""The FTP proxy under failure: dead backends, breaker and health, aborts, timeouts, load."""

from __future__ import annotations

import asyncio
import ftplib
import gc
import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from ftp_testkit import PASSWORD, USER, connect, random_file
from kairos_ftp.pipe import DataEnd
from kairos_ftp.splice import SpliceRelay


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _login_error(port: int) -> str:
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", port, timeout=10)
    try:
        ftp.login(USER, PASSWORD)
    except ftplib.Error as exc:
        return str(exc)
    finally:
        ftp.close()
    return "logged in"


async def test_backend_down_gets_421_and_opens_the_breaker(ftp_gateway: Any) -> None:
    gw = await ftp_gateway(
        [f"ftp://127.0.0.1:{_dead_port()}"],
        upstream={"circuit_breaker": {"consecutive_failures": 2, "open_duration": 60}},
    )
    pool = gw.running.gateway.runtime.pools["files"]
    backend = pool.backends[0]
    first = await asyncio.to_thread(_login_error, gw.port)
    second = await asyncio.to_thread(_login_error, gw.port)
    assert first.startswith("421") and "no FTP server reachable" in first
    assert second.startswith("421")
    assert backend.state == "circuit_open"
    assert backend.in_flight == 0
    third = await asyncio.to_thread(_login_error, gw.port)  # refused without trying
    assert third.startswith("421")
    errors = gw.metrics.families["kairos_ftp_errors"].children
    assert errors[(gw.listener.context.name, "no_backend")].value == 3


async def test_a_dead_backend_is_skipped_for_a_live_one(ftp_server: Any, ftp_gateway: Any) -> None:
    dead = f"ftp://127.0.0.1:{_dead_port()}"
    gw = await ftp_gateway([dead, ftp_server.url], connect_attempts=2)
    for _ in range(4):  # round robin starts on either; every login must land on the live one
        ftp = await asyncio.to_thread(connect, gw.port)
        await asyncio.to_thread(ftp.quit)
    live = gw.running.gateway.runtime.pools["files"].backends[1]
    assert live.in_flight == 0


async def test_active_health_checks_use_an_ftp_probe(ftp_factory: Any, ftp_gateway: Any) -> None:
    server = ftp_factory()
    gw = await ftp_gateway(
        [server.url],
        upstream={
            "health_check": {
                "active": {
                    "interval": 0.05,
                    "timeout": 1,
                    "healthy_threshold": 1,
                    "unhealthy_threshold": 2,
                }
            }
        },
    )
    pool = gw.running.gateway.runtime.pools["files"]
    assert pool.health_probe is not None
    checker = pool.health_checker
    ok, detail = await checker.probe(pool.backends[0])
    assert ok and detail.startswith("220")
    await asyncio.sleep(0.3)
    assert pool.backends[0].healthy
    server.stop()
    for _ in range(100):
        if not pool.backends[0].healthy:
            break
        await asyncio.sleep(0.05)
    assert pool.backends[0].state == "down"
    assert (await asyncio.to_thread(_login_error, gw.port)).startswith("421")


@pytest.mark.parametrize("zero_copy", [True, False], ids=["splice", "copy"])
async def test_client_abort_mid_transfer_leaks_nothing(
    ftp_server: Any, ftp_gateway: Any, ftp_root: Path, zero_copy: bool
) -> None:
    gw = await ftp_gateway([ftp_server.url], zero_copy=zero_copy)
    random_file(ftp_root / "big.bin", 48 * 1024 * 1024)
    (ftp_root / "small.txt").write_bytes(b"still serving")
    baseline_tasks = len(asyncio.all_tasks())
    baseline_fds = len(os.listdir("/proc/self/fd"))

    def abort_with_abor() -> list[str]:
        ftp = connect(gw.port)
        conn = ftp.transfercmd("RETR big.bin")
        conn.recv(65536)
        replies = [ftp.abort()]  # ABOR: 426 for the transfer...
        conn.close()
        replies.append(ftp.getresp())  # ...and 226 for the ABOR itself
        data = bytearray()
        ftp.retrbinary("RETR small.txt", data.extend)
        replies.append(data.decode())
        ftp.quit()
        return replies

    def vanish_mid_transfer() -> None:
        ftp = connect(gw.port)
        conn = ftp.transfercmd("RETR big.bin")
        conn.recv(65536)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        conn.close()  # a reset on the data connection...
        ftp.close()  # ...and the client is gone without a word

    aborted = await asyncio.to_thread(abort_with_abor)
    assert aborted[0].startswith("426")
    assert aborted[1][:3] in ("225", "226")
    assert aborted[2] == "still serving"
    await asyncio.to_thread(vanish_mid_transfer)

    ftp = await asyncio.to_thread(connect, gw.port)  # the gateway keeps serving
    data = bytearray()
    await asyncio.to_thread(ftp.retrbinary, "RETR small.txt", data.extend)
    await asyncio.to_thread(ftp.quit)
    assert data == b"still serving"
    for _ in range(100):
        if not gw.listener.sessions and len(asyncio.all_tasks()) <= baseline_tasks:
            break
        await asyncio.sleep(0.05)
    assert not gw.listener.sessions
    assert len(asyncio.all_tasks()) <= baseline_tasks
    gc.collect()
    assert not [o for o in gc.get_objects() if isinstance(o, DataEnd) and not o.closed]
    assert not [o for o in gc.get_objects() if isinstance(o, SpliceRelay) and not o.done.done()]
    for _ in range(100):  # pyftpdlib (same process) closes its side a little later
        if len(os.listdir("/proc/self/fd")) <= baseline_fds:
            break
        await asyncio.sleep(0.05)
    assert len(os.listdir("/proc/self/fd")) <= baseline_fds
    transfers = gw.metrics.families["kairos_ftp_transfers"].children
    name = gw.listener.context.name
    assert transfers[(name, "download", "aborted")].value == 1
    assert transfers[(name, "download", "failed")].value == 1
    assert transfers[(name, "download", "ok")].value == 2


async def test_idle_control_connections_time_out(ftp_server: Any, ftp_gateway: Any) -> None:
    gw = await ftp_gateway([ftp_server.url], idle_timeout=0.3)

    def idle() -> str:
        ftp = connect(gw.port)
        return ftp.getline()  # nothing sent: the gateway speaks first, then closes

    assert (await asyncio.to_thread(idle)).startswith("421 Idle timeout")
    errors = gw.metrics.families["kairos_ftp_errors"].children
    assert errors[(gw.listener.context.name, "idle_timeout")].value == 1


async def test_data_connection_timeouts(ftp_server: Any, ftp_gateway: Any, ftp_root: Path) -> None:
    gw = await ftp_gateway([ftp_server.url], data_connect_timeout=0.3, data_timeout=0.3)
    random_file(ftp_root / "big.bin", 32 * 1024 * 1024)

    def never_connects() -> str:
        ftp = connect(gw.port)
        ftp.sendcmd("EPSV")  # ...but never connects to the port
        assert ftp.sendcmd("RETR big.bin")[0] == "1"  # the backend starts...
        reply = ftp.getline()  # ...but the client never came
        ftp.close()
        return reply

    def stalls() -> str:
        ftp = connect(gw.port)
        conn = ftp.transfercmd("RETR big.bin")
        conn.recv(1024)  # then reads nothing more: the relay goes idle
        try:
            return ftp.getline()
        finally:
            conn.close()
            ftp.close()

    assert (await asyncio.to_thread(never_connects)).startswith("425")
    assert (await asyncio.to_thread(stalls)).startswith("426")


async def test_fifty_concurrent_sessions(ftp_server: Any, ftp_gateway: Any, ftp_root: Path) -> None:
    gw = await ftp_gateway([ftp_server.url], max_sessions_per_client=100)
    sessions = 50
    digests = {i: random_file(ftp_root / f"f{i}.bin", 64 * 1024 + i) for i in range(sessions)}
    peak: list[int] = []
    barrier = threading.Barrier(sessions, action=lambda: peak.append(len(gw.listener.sessions)))

    def one(index: int) -> str:
        import hashlib

        ftp = connect(gw.port, "epsv" if index % 2 else "port")
        barrier.wait(timeout=30)  # every session is open at the same time
        digest = hashlib.sha256()
        ftp.retrbinary(f"RETR f{index}.bin", digest.update)
        ftp.quit()
        return digest.hexdigest()

    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(sessions) as pool:
        results = await asyncio.gather(
            *(loop.run_in_executor(pool, one, i) for i in range(sessions))
        )
    assert results == [digests[i] for i in range(sessions)]
    assert peak == [sessions]


async def test_reload_moves_new_sessions_to_the_new_pool(
    ftp_factory: Any, ftp_gateway: Any, tmp_path: Path
) -> None:
    old_root, new_root = tmp_path / "old", tmp_path / "new"
    old_root.mkdir()
    new_root.mkdir()
    (old_root / "which.txt").write_bytes(b"old")
    (new_root / "which.txt").write_bytes(b"new")
    old, new = ftp_factory(root=old_root), ftp_factory(root=new_root)
    gw = await ftp_gateway([old.url])

    def which() -> bytes:
        ftp = connect(gw.port)
        data = bytearray()
        ftp.retrbinary("RETR which.txt", data.extend)
        ftp.quit()
        return bytes(data)

    assert await asyncio.to_thread(which) == b"old"
    config = dict(gw.running.loaded.config.model_dump(mode="json", exclude_unset=True))
    config["upstreams"] = {"files": {"backends": [{"url": new.url}]}}
    await gw.running.reload(config)
    assert await asyncio.to_thread(which) == b"new"
    assert gw.running.gateway.runtime.pools["files"].health_probe is not None
