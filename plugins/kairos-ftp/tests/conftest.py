"""Fixtures for the kairos-ftp tests: real pyftpdlib servers, trustme certificates, gateways."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kairos_ftp
import pytest
import pytest_asyncio
import trustme

from kairos_core.testing import RunningGateway, running_gateway

sys.path.insert(0, str(Path(__file__).parent))

from ftp_testkit import Certificates, FtpServer


@pytest.fixture
def ftp_root(tmp_path: Path) -> Path:
    """The directory the test FTP server serves."""
    root = tmp_path / "ftp-root"
    root.mkdir()
    return root


@pytest.fixture
def ftp_factory(ftp_root: Path) -> Iterator[Callable[..., FtpServer]]:
    """Start FTP servers (`ftp_factory(tls=..., root=...)`); all stopped after the test."""
    started: list[FtpServer] = []

    def start(**kwargs: Any) -> FtpServer:
        kwargs.setdefault("root", ftp_root)
        server = FtpServer(**kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def ftp_server(ftp_factory: Callable[..., FtpServer]) -> FtpServer:
    """One plain FTP server."""
    return ftp_factory()


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """trustme CA and a server certificate (shared by the gateway and the test FTPS server)."""
    directory = tmp_path_factory.mktemp("certs")
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    ca_file, cert_file, key_file = (directory / n for n in ("ca.pem", "cert.pem", "key.pem"))
    ca.cert_pem.write_to_path(str(ca_file))
    issued.cert_chain_pems[0].write_to_path(str(cert_file))
    for extra in issued.cert_chain_pems[1:]:
        extra.write_to_path(str(cert_file), append=True)
    issued.private_key_pem.write_to_path(str(key_file))
    return Certificates(ca, str(ca_file), str(cert_file), str(key_file))


@dataclass
class FtpGateway:
    """A running gateway with one FTP listener."""

    running: RunningGateway
    port: int
    listener: kairos_ftp.FtpListener

    @property
    def metrics(self) -> Any:
        """The gateway process's metrics."""
        return self.running.gateway.metrics


GatewayStarter = Callable[..., Any]


@pytest_asyncio.fixture
async def ftp_gateway() -> AsyncIterator[GatewayStarter]:
    """`await ftp_gateway(backends, **listener_settings)` starts a gateway with an FTP listener."""
    async with AsyncExitStack() as stack:

        async def start(
            backends: list[str] | None = None,
            config: dict[str, Any] | None = None,
            upstream: dict[str, Any] | None = None,
            **settings: Any,
        ) -> FtpGateway:
            if config is None:
                pool = {"backends": [{"url": url} for url in backends or []], **(upstream or {})}
                settings.setdefault("upstream", "files")
                config = {
                    "upstreams": {"files": pool},
                    "listeners": [
                        {"protocol": "ftp", "host": "127.0.0.1", "port": 0, "config": settings}
                    ],
                }
            running = await stack.enter_async_context(
                running_gateway(config, plugins=[kairos_ftp], admin=False)
            )
            listener = next(
                s for c, s in running.gateway.services if isinstance(s, kairos_ftp.FtpListener)
            )
            return FtpGateway(running, listener.port, listener)

        yield start
