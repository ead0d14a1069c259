"""Configuration through real YAML files: `kairos validate` errors and a `kairos serve` process."""

from __future__ import annotations

import asyncio
import ftplib
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from ftp_testkit import PASSWORD, USER, FtpServer
from kairos_ftp import FtpListenerSettings
from pydantic import ValidationError

from kairos_core.testing import GatewayProcess


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kairos_cli", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_bad_listener_settings_name_the_field(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(
        textwrap.dedent(
            """
            upstreams:
              files: {backends: [{url: "ftp://127.0.0.1:2121"}]}
            listeners:
              - protocol: ftp
                port: 2100
                config:
                  upstream: files
                  passive_ports: "60000-50000"
                  passive_address: ftp.example.com
                  idle_timout: 30
            """
        )
    )
    result = _validate(config)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "listeners[0].config.passive_ports" in output
    assert "listeners[0].config.passive_address" in output
    assert "listeners[0].config.idle_timout" in output


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "set `upstream`, `aliases`, or both"),
        ({"upstream": "x", "aliases": {"a@b": "x"}}, "alias 'a@b'"),
        ({"upstream": "x", "passive_ports": "80-90"}, "1024 <= first"),
        ({"upstream": "x", "tls": {"cert": "c.pem"}}, "key"),
    ],
)
def test_settings_model_rejects_mistakes(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        FtpListenerSettings.model_validate(settings)


async def test_unknown_upstream_stops_start_up_with_a_clear_message(tmp_path: Path) -> None:
    config = tmp_path / "missing.yaml"
    config.write_text(
        textwrap.dedent(
            f"""
            admin: {{enabled: false}}
            upstreams:
              web: {{backends: [{{url: "http://127.0.0.1:9"}}]}}
            listeners:
              - {{host: 127.0.0.1, port: {_free_port()}}}
              - protocol: ftp
                host: 127.0.0.1
                port: {_free_port()}
                config: {{upstream: files}}
            """
        )
    )
    with pytest.raises(RuntimeError) as failure:
        await GatewayProcess(["--config", str(config)]).start()
    assert "config.upstream: unknown upstream 'files'; defined: web" in str(failure.value)


async def test_serve_from_a_yaml_file(
    ftp_server: FtpServer, ftp_root: Path, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    (ftp_root / "readme.txt").write_bytes(b"served by kairos serve")
    ftp_port = _free_port()
    config = tmp_path / "kairos.yaml"
    config.write_text(
        textwrap.dedent(
            f"""
            admin: {{enabled: false}}
            upstreams:
              files:
                backends: [{{url: "{ftp_server.url}"}}]
                health_check:
                  active: {{interval: 0.2, timeout: 1}}
            listeners:
              - {{host: 127.0.0.1, port: {_free_port()}}}
              - protocol: ftp
                name: public-ftp
                host: 127.0.0.1
                port: {ftp_port}
                config:
                  upstream: files
                  aliases: {{main: files}}
                  greeting: "Welcome to $$HOME"
            routes:
              - prefix: /files
                strip_prefix: true
                upstream: files
                plugins:
                  - name: ftp-bridge
                    config:
                      username: {USER}
                      password: "${{FTP_BRIDGE_PASSWORD}}"
            """
        )
    )
    gateway = await GatewayProcess(
        ["--config", str(config)], env={"FTP_BRIDGE_PASSWORD": PASSWORD}
    ).start()
    try:
        async with http.get(f"{gateway.url}/files/readme.txt") as response:
            assert response.status == 200
            assert await response.read() == b"served by kairos serve"

        def ftp_session() -> tuple[str, bytes]:
            ftp = ftplib.FTP()
            welcome = ftp.connect("127.0.0.1", ftp_port, timeout=10)
            ftp.login(f"{USER}@main", PASSWORD)
            data = bytearray()
            ftp.retrbinary("RETR readme.txt", data.extend)
            ftp.quit()
            return welcome, bytes(data)

        await asyncio.sleep(0.5)  # a few FTP health probes have run: the backend stays up
        welcome, data = await asyncio.to_thread(ftp_session)
        assert welcome == "220 Welcome to $HOME"
        assert data == b"served by kairos serve"
    finally:
        assert await gateway.stop() == 0
