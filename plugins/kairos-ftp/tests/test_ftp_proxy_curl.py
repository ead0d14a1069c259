"""curl as the FTP client: every data mode, uploads, listings and FTPS (skipped without curl)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
from ftp_testkit import PASSWORD, USER, Certificates, random_file, sha256_file

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")

MODES = {
    "epsv": [],
    "pasv": ["--disable-epsv"],
    "eprt": ["--ftp-port", "127.0.0.1"],
    "port": ["--ftp-port", "127.0.0.1", "--disable-eprt"],
}


async def curl(*args: str) -> tuple[int, str]:
    """Run curl; (exit code, stderr)."""
    process = await asyncio.create_subprocess_exec(
        "curl",
        "--silent",
        "--show-error",
        "--max-time",
        "30",
        "--user",
        f"{USER}:{PASSWORD}",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    return process.returncode or 0, out.decode() + err.decode()


@pytest.mark.parametrize("mode", list(MODES))
async def test_curl_download_upload_and_listing(
    ftp_server: Any, ftp_gateway: Any, ftp_root: Path, tmp_path: Path, mode: str
) -> None:
    gw = await ftp_gateway([ftp_server.url])
    base = f"ftp://127.0.0.1:{gw.port}"
    digest = random_file(ftp_root / "file.bin", 2 * 1024 * 1024 + 9)
    upload = tmp_path / "up.bin"
    upload_digest = random_file(upload, 1024 * 1024 + 1)
    out = tmp_path / "out.bin"
    code, output = await curl(*MODES[mode], f"{base}/file.bin", "--output", str(out))
    assert code == 0, output
    assert sha256_file(out) == digest
    code, output = await curl(*MODES[mode], "--upload-file", str(upload), f"{base}/up.bin")
    assert code == 0, output
    assert sha256_file(ftp_root / "up.bin") == upload_digest
    code, output = await curl(*MODES[mode], "--list-only", f"{base}/")
    assert code == 0
    assert sorted(output.split()) == ["file.bin", "up.bin"]


async def test_curl_ftps(
    ftp_server: Any, ftp_gateway: Any, ftp_root: Path, tmp_path: Path, certificates: Certificates
) -> None:
    gw = await ftp_gateway(
        [ftp_server.url],
        tls={"cert": certificates.cert_file, "key": certificates.key_file, "require_data": True},
    )
    digest = random_file(ftp_root / "secret.bin", 1024 * 1024 + 5)
    out = tmp_path / "out.bin"
    code, output = await curl(
        "--ssl-reqd",
        "--cacert",
        certificates.ca_file,
        f"ftp://127.0.0.1:{gw.port}/secret.bin",
        "--output",
        str(out),
    )
    assert code == 0, output
    assert sha256_file(out) == digest
    code, output = await curl(f"ftp://127.0.0.1:{gw.port}/secret.bin", "--output", str(out))
    assert code != 0  # plaintext data refused: PROT P is required
