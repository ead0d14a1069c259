"""Transfers through the FTP proxy: passive/active on both legs, binary/ASCII, REST, listings."""

from __future__ import annotations

import asyncio
import ftplib
import io
import socket
import threading
from pathlib import Path
from typing import Any

import pytest
from ftp_testkit import PASSWORD, USER, connect, random_file, sha256_file
from kairos_ftp import splice
from pyftpdlib.handlers import DTPHandler

SIZE = 3 * 1024 * 1024 + 123  # several relay buffers, not a round number


MODES = ["pasv", "epsv", "port", "eprt"]


@pytest.mark.parametrize("zero_copy", [True, False], ids=["splice", "copy"])
@pytest.mark.parametrize("backend_data", ["passive", "active"])
@pytest.mark.parametrize("mode", MODES)
async def test_download_and_upload_keep_every_byte(
    ftp_server: Any,
    ftp_gateway: Any,
    ftp_root: Path,
    tmp_path: Path,
    mode: str,
    backend_data: str,
    zero_copy: bool,
) -> None:
    gw = await ftp_gateway([ftp_server.url], backend_data=backend_data, zero_copy=zero_copy)
    digest = random_file(ftp_root / "source.bin", SIZE)
    upload = tmp_path / "upload.bin"
    upload_digest = random_file(upload, SIZE - 4567)

    def session() -> str:
        ftp = connect(gw.port, mode)
        out = tmp_path / "download.bin"
        with out.open("wb") as handle:
            ftp.retrbinary("RETR source.bin", handle.write, blocksize=65536)
        with upload.open("rb") as handle:
            ftp.storbinary("STOR uploaded.bin", handle, blocksize=65536)
        assert ftp.size("uploaded.bin") == SIZE - 4567
        ftp.quit()
        return sha256_file(out)

    assert await asyncio.to_thread(session) == digest
    assert sha256_file(ftp_root / "uploaded.bin") == upload_digest
    transfers = gw.metrics.families["kairos_ftp_transfers"].children
    listener = gw.listener.context.name
    assert transfers[(listener, "download", "ok")].value == 1
    assert transfers[(listener, "upload", "ok")].value == 1
    data = gw.metrics.families["kairos_ftp_bytes"].children
    assert data[(listener, "download")].value == SIZE
    assert data[(listener, "upload")].value == SIZE - 4567


async def test_ascii_type_converts_line_endings(
    ftp_server: Any, ftp_gateway: Any, ftp_root: Path
) -> None:
    gw = await ftp_gateway([ftp_server.url])
    (ftp_root / "notes.txt").write_bytes(b"one\ntwo\nthree\n")

    def session() -> tuple[list[str], bytes]:
        ftp = connect(gw.port)
        lines: list[str] = []
        ftp.retrlines("RETR notes.txt", lines.append)  # TYPE A: the server sends CRLF
        raw = bytearray()
        ftp.voidcmd("TYPE A")
        conn = ftp.transfercmd("RETR notes.txt")
        while chunk := conn.recv(1024):
            raw += chunk
        conn.close()
        ftp.voidresp()
        ftp.storlines("STOR lines.txt", io.BytesIO(b"alpha\r\nbeta\r\n"))
        ftp.quit()
        return lines, bytes(raw)

    lines, raw = await asyncio.to_thread(session)
    assert lines == ["one", "two", "three"]
    assert raw == b"one\r\ntwo\r\nthree\r\n"  # ASCII mode on the wire, relayed untouched
    assert (ftp_root / "lines.txt").read_bytes() == b"alpha\nbeta\n"


async def test_rest_resumes_downloads_and_uploads(
    ftp_server: Any, ftp_gateway: Any, ftp_root: Path, tmp_path: Path
) -> None:
    gw = await ftp_gateway([ftp_server.url])
    random_file(ftp_root / "big.bin", SIZE)
    source = (ftp_root / "big.bin").read_bytes()
    offset = 1_000_003

    def session() -> bytes:
        ftp = connect(gw.port)
        tail = bytearray()
        ftp.retrbinary("RETR big.bin", tail.extend, rest=offset)
        # resume an interrupted upload: the first part is there, send the rest from `offset`
        ftp.storbinary("STOR resumed.bin", io.BytesIO(source[:offset]))
        ftp.storbinary("STOR resumed.bin", io.BytesIO(source[offset:]), rest=offset)
        ftp.storbinary("APPE resumed.bin", io.BytesIO(b"+appended"))
        ftp.quit()
        return bytes(tail)

    assert await asyncio.to_thread(session) == source[offset:]
    assert (ftp_root / "resumed.bin").read_bytes() == source + b"+appended"


async def test_control_commands_are_relayed_faithfully(
    ftp_server: Any, ftp_gateway: Any, ftp_root: Path
) -> None:
    gw = await ftp_gateway([ftp_server.url])
    (ftp_root / "docs").mkdir()
    (ftp_root / "docs" / "a.txt").write_bytes(b"x" * 10)
    (ftp_root / "docs" / "b.txt").write_bytes(b"y" * 20)

    def session() -> dict[str, Any]:
        ftp = connect(gw.port, "pasv")
        seen: dict[str, Any] = {}
        seen["help"] = ftp.sendcmd("HELP")  # a multi-line 214 reply
        seen["feat"] = ftp.sendcmd("FEAT")
        seen["opts"] = ftp.sendcmd("OPTS UTF8 ON")
        seen["site"] = ftp.sendcmd("SITE HELP")
        ftp.cwd("docs")
        seen["pwd"] = ftp.pwd()
        seen["nlst"] = sorted(ftp.nlst())
        listing: list[str] = []
        ftp.retrlines("LIST", listing.append)
        seen["list"] = listing
        seen["mlsd"] = {name: facts for name, facts in ftp.mlsd()}
        seen["mlst"] = ftp.sendcmd("MLST a.txt")
        ftp.voidcmd("TYPE I")
        seen["size"] = ftp.size("b.txt")
        seen["mdtm"] = ftp.sendcmd("MDTM a.txt")
        ftp.rename("a.txt", "renamed.txt")
        ftp.mkd("sub")
        ftp.rmd("sub")
        ftp.delete("b.txt")
        seen["after"] = sorted(ftp.nlst())
        seen["stat"] = ftp.sendcmd("STAT")
        seen["missing"] = _error_of(lambda: ftp.size("nope.txt"))
        seen["unknown"] = _error_of(lambda: ftp.sendcmd("XYZZY"))
        seen["quit"] = ftp.quit()
        return seen

    seen = await asyncio.to_thread(session)
    assert seen["help"].startswith("214-") and seen["help"].count("\n") > 2
    assert "MLST" in seen["feat"] and "EPSV" in seen["feat"]
    assert "AUTH TLS" not in seen["feat"]  # the gateway has no certificate here
    assert seen["opts"].startswith("200")
    assert seen["site"].startswith("214")
    assert seen["pwd"] == "/docs"
    assert seen["nlst"] == ["a.txt", "b.txt"]
    assert len(seen["list"]) == 2 and any(line.endswith("b.txt") for line in seen["list"])
    assert seen["mlsd"]["b.txt"]["size"] == "20" and seen["mlsd"]["a.txt"]["type"] == "file"
    assert seen["mlst"].startswith("250-") and "size=10" in seen["mlst"]
    assert seen["size"] == 20
    assert seen["mdtm"].startswith("213 ")
    assert seen["after"] == ["renamed.txt"]
    assert seen["stat"].startswith("211-")
    assert seen["missing"].startswith("550")
    assert seen["unknown"].startswith("500")
    assert seen["quit"].startswith("221")


def _error_of(call: Any) -> str:
    try:
        call()
    except ftplib.Error as exc:
        return str(exc)
    raise AssertionError("expected an FTP error")


@pytest.mark.parametrize("passive", [True, False], ids=["epsv", "eprt"])
async def test_ipv6_clients_use_extended_commands(
    ftp_server: Any, ftp_gateway: Any, ftp_root: Path, passive: bool
) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    gw = await ftp_gateway(
        config={
            "upstreams": {"files": {"backends": [{"url": ftp_server.url}]}},
            "listeners": [
                {"protocol": "ftp", "host": "::1", "port": 0, "config": {"upstream": "files"}}
            ],
        }
    )
    (ftp_root / "six.txt").write_bytes(b"over IPv6")

    def session() -> tuple[bytes, str]:
        ftp = ftplib.FTP()
        ftp.connect("::1", gw.port, timeout=10)  # ftplib speaks EPSV/EPRT on IPv6
        ftp.login(USER, PASSWORD)
        ftp.set_pasv(passive)
        data = bytearray()
        ftp.retrbinary("RETR six.txt", data.extend)
        try:
            ftp.sendcmd("PASV")
            pasv = "accepted"
        except ftplib.Error as exc:
            pasv = str(exc)
        ftp.quit()
        return bytes(data), pasv

    data, pasv = await asyncio.to_thread(session)
    assert data == b"over IPv6"
    assert pasv.startswith("425") and "EPSV" in pasv


async def test_splice_relay_yields_to_the_loop_and_keeps_every_byte(
    ftp_server: Any,
    ftp_gateway: Any,
    ftp_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(splice, "_BUDGET", 1000)  # each wakeup moves about one splice's worth
    gw = await ftp_gateway([ftp_server.url])
    digest = random_file(ftp_root / "source.bin", SIZE)

    def session() -> str:
        ftp = connect(gw.port)
        out = tmp_path / "download.bin"
        with out.open("wb") as handle:
            ftp.retrbinary("RETR source.bin", handle.write, blocksize=65536)
        with out.open("rb") as handle:
            ftp.storbinary("STOR uploaded.bin", handle, blocksize=65536)
        ftp.quit()
        return sha256_file(out)

    assert await asyncio.to_thread(session) == digest
    assert sha256_file(ftp_root / "uploaded.bin") == digest


async def test_a_sender_that_pauses_mid_stream_is_not_held_back(
    ftp_factory: Any, ftp_gateway: Any, ftp_root: Path
) -> None:
    arrived = threading.Event()

    class Watched(DTPHandler):  # type: ignore[misc]
        def handle_read(self) -> None:
            super().handle_read()
            if self.tot_bytes_received >= 1000:
                arrived.set()

        handle_read_event = handle_read  # pyftpdlib's loop calls this alias

    server = ftp_factory(handler_options={"dtp_handler": Watched})
    gw = await ftp_gateway([server.url])

    def session() -> bool:
        ftp = connect(gw.port)
        with ftp.transfercmd("STOR paused.bin") as conn:
            conn.sendall(b"a" * 1000)  # far less than a batch; the rest only once it arrived
            relayed = arrived.wait(15)
            conn.sendall(b"b" * 1000)
        ftp.voidresp()
        ftp.quit()
        return relayed

    assert await asyncio.to_thread(session)
    assert (ftp_root / "paused.bin").read_bytes() == b"a" * 1000 + b"b" * 1000
