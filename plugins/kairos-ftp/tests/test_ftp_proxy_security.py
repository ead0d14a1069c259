"""Security of the FTP proxy: bounce protection, passive-port theft, login routing, limits."""

from __future__ import annotations

import asyncio
import ftplib
import socket
from pathlib import Path
from typing import Any

import pytest
from ftp_testkit import PASSWORD, USER, connect


def _error(call: Any) -> str:
    try:
        call()
    except ftplib.Error as exc:
        return str(exc)
    raise AssertionError("expected an FTP error")


@pytest.mark.parametrize(
    "command",
    [
        "PORT 127,0,0,2,200,10",  # another loopback address: a bounce attempt
        "EPRT |1|127.0.0.2|51210|",
        "PORT 127,0,0,1,0,25",  # the client's own address but a privileged port (SMTP)
        "EPRT |1|127.0.0.1|22|",
    ],
)
async def test_bounce_attempts_are_refused(ftp_server: Any, ftp_gateway: Any, command: str) -> None:
    gw = await ftp_gateway([ftp_server.url])
    target = socket.socket()
    target.bind(("127.0.0.2", 0))
    target.listen(1)
    target.setblocking(False)

    def session() -> tuple[str, str]:
        ftp = connect(gw.port)
        refused = _error(lambda: ftp.sendcmd(command))
        after = ftp.sendcmd("NOOP")  # the session goes on
        ftp.quit()
        return refused, after

    try:
        refused, after = await asyncio.to_thread(session)
        with pytest.raises(BlockingIOError):
            target.accept()  # nobody connected to the victim
    finally:
        target.close()
    assert refused.startswith("504") and "your own" in refused
    assert after.startswith("200")
    errors = gw.metrics.families["kairos_ftp_errors"].children
    assert errors[(gw.listener.context.name, "bounce")].value == 1


async def test_passive_port_only_accepts_the_client(
    ftp_server: Any, ftp_gateway: Any, ftp_root: Path
) -> None:
    gw = await ftp_gateway([ftp_server.url])
    (ftp_root / "secret.txt").write_bytes(b"for alice only")

    def session() -> tuple[bytes, bytes]:
        ftp = connect(gw.port, "pasv")
        host, port = ftplib.parse227(ftp.sendcmd("PASV"))
        thief = socket.create_connection((host, port), source_address=("127.0.0.2", 0), timeout=5)
        ftp.sock.settimeout(15)
        own = socket.create_connection((host, port), timeout=5)
        ftp.sendcmd("RETR secret.txt")
        data = b""
        while chunk := own.recv(1024):
            data += chunk
        own.close()
        ftp.voidresp()
        thief.settimeout(5)
        stolen = thief.recv(1024)  # the gateway dropped it: EOF (or a reset)
        thief.close()
        ftp.quit()
        return data, stolen

    try:
        data, stolen = await asyncio.to_thread(session)
    except ConnectionResetError:
        pytest.fail("the legitimate client must get the data")
    assert data == b"for alice only"
    assert stolen == b""


async def test_login_routes_by_configured_alias_only(
    ftp_factory: Any, ftp_gateway: Any, tmp_path: Path
) -> None:
    east_root, west_root = tmp_path / "east", tmp_path / "west"
    east_root.mkdir()
    west_root.mkdir()
    (east_root / "where.txt").write_bytes(b"east")
    (west_root / "where.txt").write_bytes(b"west")
    east, west = ftp_factory(root=east_root), ftp_factory(root=west_root)
    gw = await ftp_gateway(
        config={
            "upstreams": {
                "east": {"backends": [{"url": east.url}]},
                "west": {"backends": [{"url": west.url}]},
            },
            "listeners": [
                {
                    "protocol": "ftp",
                    "host": "127.0.0.1",
                    "port": 0,
                    "config": {"aliases": {"East": "east", "west": "west"}},
                }
            ],
        }
    )

    def where(user: str) -> str:
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", gw.port, timeout=10)
        try:
            ftp.login(user, PASSWORD)
        except ftplib.Error as exc:
            return str(exc)
        data = bytearray()
        ftp.retrbinary("RETR where.txt", data.extend)
        ftp.quit()
        return data.decode()

    assert await asyncio.to_thread(where, f"{USER}@east") == "east"  # aliases ignore case
    assert await asyncio.to_thread(where, f"{USER}@WEST") == "west"
    for user in (f"{USER}@{east.host}:{east.port}", f"{USER}@localhost", USER, "@east"):
        refused = await asyncio.to_thread(where, user)
        assert refused.startswith("530"), user


async def test_unknown_alias_goes_to_the_default_pool_as_a_plain_user_name(
    ftp_server: Any, ftp_gateway: Any
) -> None:
    gw = await ftp_gateway([ftp_server.url], aliases={"other": "files"})

    def login(user: str) -> str:
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", gw.port, timeout=10)
        try:
            return ftp.login(user, PASSWORD)
        except ftplib.Error as exc:
            return str(exc)
        finally:
            ftp.close()

    assert (await asyncio.to_thread(login, f"{USER}@other")).startswith("230")
    # "alice@127.0.0.1" is no alias: the whole name is the backend user, which does not exist
    assert (await asyncio.to_thread(login, f"{USER}@127.0.0.1")).startswith("530")


async def test_wrong_password_then_too_many_failures_close_the_session(
    ftp_server: Any, ftp_gateway: Any
) -> None:
    gw = await ftp_gateway([ftp_server.url], max_login_failures=2)

    def session() -> list[str]:
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", gw.port, timeout=10)
        seen = [_error(lambda: ftp.login(USER, "wrong"))]
        try:
            ftp.login(USER, "wrong again")
        except ftplib.Error as exc:
            seen.append(str(exc))
        seen.append(ftp.getline())  # the gateway's goodbye
        seen.append(ftp.file.readline() if ftp.file else "")
        ftp.close()
        return seen

    first, second, goodbye, eof = await asyncio.to_thread(session)
    assert first.startswith("530")
    assert second.startswith("530")
    assert goodbye.startswith("421") and "failed logins" in goodbye
    assert eof == ""
    errors = gw.metrics.families["kairos_ftp_errors"].children
    assert errors[(gw.listener.context.name, "login")].value == 2


async def test_connection_limits_per_client(ftp_server: Any, ftp_gateway: Any) -> None:
    gw = await ftp_gateway([ftp_server.url], max_sessions_per_client=2)

    def sessions() -> tuple[str, str]:
        first, second = connect(gw.port), connect(gw.port)
        third = ftplib.FTP()
        try:
            third.connect("127.0.0.1", gw.port, timeout=10)
            refused = "no refusal"
        except ftplib.Error as exc:
            refused = str(exc)
        second.quit()
        fourth = connect(gw.port)  # a slot is free again
        welcome = fourth.getwelcome()
        for ftp in (first, fourth):
            ftp.quit()
        return refused, welcome

    refused, welcome = await asyncio.to_thread(sessions)
    assert refused.startswith("421") and "your address" in refused
    assert welcome.startswith("220")


async def test_commands_before_login_are_answered_by_the_gateway(
    ftp_server: Any, ftp_gateway: Any
) -> None:
    gw = await ftp_gateway([ftp_server.url])

    def session() -> list[str]:
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", gw.port, timeout=10)
        replies = [
            _error(lambda: ftp.sendcmd("PASV")),
            _error(lambda: ftp.sendcmd("RETR x")),
            _error(lambda: ftp.sendcmd("PASS x")),
            _error(lambda: ftp.sendcmd("AUTH TLS")),
            ftp.sendcmd("NOOP"),
            ftp.sendcmd("SYST"),
            ftp.sendcmd("FEAT"),
            ftp.quit(),
        ]
        return replies

    pasv, retr, password, auth, noop, syst, feat, bye = await asyncio.to_thread(session)
    assert pasv.startswith("530") and retr.startswith("530")
    assert password.startswith("503")
    assert auth.startswith("502")  # no certificate configured
    assert noop.startswith("200") and syst.startswith("215")
    assert feat.startswith("211-") and " EPSV" in feat
    assert bye.startswith("221")
