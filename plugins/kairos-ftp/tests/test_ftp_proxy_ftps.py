"""Explicit FTPS: AUTH TLS at the gateway, TLS or plaintext to the backend, PROT P data."""

from __future__ import annotations

import asyncio
import ftplib
import ssl
from pathlib import Path
from typing import Any

import pytest
from ftp_testkit import PASSWORD, USER, Certificates, configure_mode, random_file, sha256_file

SIZE = 2 * 1024 * 1024 + 77


def tls_client(port: int, certificates: Certificates, mode: str = "epsv") -> ftplib.FTP_TLS:
    """ftplib over explicit TLS, trusting the test CA, with PROT P."""
    context = ssl.create_default_context(cafile=certificates.ca_file)
    ftp = ftplib.FTP_TLS(context=context)
    ftp.connect("127.0.0.1", port, timeout=15)
    ftp.auth()
    ftp.login(USER, PASSWORD)  # FTP_TLS.login: after AUTH TLS
    ftp.prot_p()
    configure_mode(ftp, mode)
    return ftp


def gateway_tls(certificates: Certificates, **extra: Any) -> dict[str, Any]:
    """The listener's `tls:` settings with the test certificate."""
    return {"cert": certificates.cert_file, "key": certificates.key_file, **extra}


@pytest.mark.parametrize(
    ("backend_tls", "mode"),
    [(False, "epsv"), (False, "port"), (True, "pasv"), (True, "eprt")],
)
async def test_ftps_login_and_transfers(
    ftp_factory: Any,
    ftp_gateway: Any,
    ftp_root: Path,
    tmp_path: Path,
    certificates: Certificates,
    backend_tls: bool,
    mode: str,
) -> None:
    server = ftp_factory(
        tls=(certificates.cert_file, certificates.key_file) if backend_tls else None,
        handler_options={"tls_control_required": True, "tls_data_required": True}
        if backend_tls
        else {},
    )
    gw = await ftp_gateway(
        [server.url],
        upstream={"tls": {"ca_bundle": certificates.ca_file}},
        tls=gateway_tls(certificates),
    )
    digest = random_file(ftp_root / "secret.bin", SIZE)
    upload = tmp_path / "up.bin"
    upload_digest = random_file(upload, SIZE // 3)

    def session() -> tuple[str, str, str]:
        ftp = tls_client(gw.port, certificates, mode)
        feat = ftp.sendcmd("FEAT")
        out = tmp_path / "down.bin"
        with out.open("wb") as handle:
            ftp.retrbinary("RETR secret.bin", handle.write, blocksize=65536)
        with upload.open("rb") as handle:
            ftp.storbinary("STOR up.bin", handle, blocksize=65536)
        names = ",".join(sorted(ftp.nlst()))
        ftp.quit()
        return sha256_file(out), feat, names

    downloaded, feat, names = await asyncio.to_thread(session)
    assert downloaded == digest
    assert sha256_file(ftp_root / "up.bin") == upload_digest
    assert "AUTH TLS" in feat and "PROT" in feat
    assert names == "secret.bin,up.bin"


async def test_backend_data_can_stay_clear(
    ftp_factory: Any, ftp_gateway: Any, ftp_root: Path, certificates: Certificates
) -> None:
    server = ftp_factory(tls=(certificates.cert_file, certificates.key_file))
    gw = await ftp_gateway(
        [server.url],
        upstream={"tls": {"ca_bundle": certificates.ca_file}},
        backend_data_protection="clear",
    )
    (ftp_root / "a.txt").write_bytes(b"clear data, TLS control")
    ftp = await asyncio.to_thread(_plain_login, gw.port)
    data = bytearray()
    await asyncio.to_thread(ftp.retrbinary, "RETR a.txt", data.extend)
    await asyncio.to_thread(ftp.quit)
    assert data == b"clear data, TLS control"


def _plain_login(port: int) -> ftplib.FTP:
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", port, timeout=10)
    ftp.login(USER, PASSWORD)
    return ftp


async def test_tls_can_be_required(
    ftp_server: Any, ftp_gateway: Any, certificates: Certificates
) -> None:
    gw = await ftp_gateway(
        [ftp_server.url],
        tls=gateway_tls(certificates, require_control=True, require_data=True),
    )

    def plain() -> str:
        try:
            _plain_login(gw.port)
        except ftplib.Error as exc:
            return str(exc)
        return "logged in"

    def clear_data() -> str:
        context = ssl.create_default_context(cafile=certificates.ca_file)
        ftp = ftplib.FTP_TLS(context=context)
        ftp.connect("127.0.0.1", gw.port, timeout=10)
        ftp.login(USER, PASSWORD)  # AUTH TLS, but PROT C
        try:
            ftp.sendcmd("EPSV")
        except ftplib.Error as exc:
            return str(exc)
        finally:
            ftp.close()
        return "data allowed"

    assert (await asyncio.to_thread(plain)).startswith("530 TLS required")
    assert (await asyncio.to_thread(clear_data)).startswith("522")


async def test_backend_with_an_untrusted_certificate_is_unavailable(
    ftp_factory: Any, ftp_gateway: Any, certificates: Certificates
) -> None:
    server = ftp_factory(tls=(certificates.cert_file, certificates.key_file))
    gw = await ftp_gateway([server.url])  # no ca_bundle: the test CA is not trusted

    def login() -> str:
        try:
            _plain_login(gw.port)
        except ftplib.Error as exc:
            return str(exc)
        return "logged in"

    assert (await asyncio.to_thread(login)).startswith("421")
