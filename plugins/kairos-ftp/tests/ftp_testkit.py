"""Helpers for the kairos-ftp tests: a real pyftpdlib server in a thread, files and digests."""

from __future__ import annotations

import ftplib
import hashlib
import os
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme
from pydantic import BaseModel, ConfigDict

from kairos_core import (
    AuthFailure,
    AuthPlugin,
    Consumer,
    Handler,
    RequestContext,
    Response,
    StagePlugin,
    error_response,
    hookimpl,
)

with warnings.catch_warnings():  # pyftpdlib still imports asyncore/asynchat on 3.11
    warnings.simplefilter("ignore", DeprecationWarning)
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
    from pyftpdlib.ioloop import IOLoop
    from pyftpdlib.servers import FTPServer

USER, PASSWORD = "alice", "s3cret"


@dataclass
class FtpServer:
    """A pyftpdlib server on a free loopback port, serving `root`, in a thread."""

    root: Path
    host: str = "127.0.0.1"
    tls: tuple[str, str] | None = None
    """(certfile, keyfile): serve explicit FTPS."""
    handler_options: dict[str, Any] = field(default_factory=dict)
    port: int = 0
    _server: FTPServer | None = None
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        """The backend URL for an upstream pool."""
        scheme = "ftps" if self.tls else "ftp"
        return f"{scheme}://{self.host}:{self.port}"

    def start(self) -> FtpServer:
        """Bind and serve in a daemon thread."""
        authorizer = DummyAuthorizer()
        authorizer.add_user(USER, PASSWORD, str(self.root), perm="elradfmwMT")
        authorizer.add_user("reader", "r3ad", str(self.root), perm="elr")
        base = TLS_FTPHandler if self.tls else FTPHandler
        options: dict[str, Any] = {
            "authorizer": authorizer,
            "banner": "pyftpdlib test server ready",
            "auth_failed_timeout": 0.01,
            **self.handler_options,
        }
        if self.tls:
            options["certfile"], options["keyfile"] = self.tls
        handler = type("TestHandler", (base,), options)
        # an IOLoop of its own: pyftpdlib's default loop is one per process
        self._server = FTPServer((self.host, self.port), handler, ioloop=IOLoop())
        self.port = self._server.address[1]
        self._thread = threading.Thread(target=self._serve, name="pyftpdlib", daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        assert self._server is not None
        while not self._stop.is_set():
            self._server.serve_forever(timeout=0.02, blocking=False, handle_exit=False)
        self._server.close_all()

    def stop(self) -> None:
        """Stop serving and close every connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)


@dataclass(frozen=True)
class Certificates:
    """A test CA and a certificate for 127.0.0.1 / localhost, as files."""

    ca: trustme.CA
    ca_file: str
    cert_file: str
    key_file: str


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def random_file(path: Path, size: int) -> str:
    """Write `size` random bytes to `path` (in 1 MiB pieces); return its SHA-256."""
    digest = hashlib.sha256()
    with path.open("wb") as handle:
        left = size
        while left:
            chunk = os.urandom(min(left, 1 << 20))
            handle.write(chunk)
            digest.update(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def connect(port: int, mode: str = "epsv") -> ftplib.FTP:
    """A logged-in ftplib client using `mode` (pasv, epsv, port, eprt) for data connections."""
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", port, timeout=15)
    ftp.login(USER, PASSWORD)
    configure_mode(ftp, mode)
    return ftp


def configure_mode(ftp: ftplib.FTP, mode: str) -> None:
    """Make ftplib use PASV, EPSV, PORT or EPRT."""
    ftp.set_pasv(mode in ("pasv", "epsv"))
    # ftplib picks EPSV/EPRT for IPv6 only: force the extended commands on IPv4 too
    if mode == "epsv":
        ftp.makepasv = lambda: ftplib.parse229(ftp.sendcmd("EPSV"), ftp.sock.getpeername())  # type: ignore[method-assign]
    if mode == "eprt":
        ftp.sendport = lambda host, port: ftp.voidcmd(f"EPRT |1|{host}|{port}|")  # type: ignore[method-assign]


class TokenAuthenticator:
    """`Authorization: Token <name>` -> consumer <name>; a tiny stand-in for a real auth plugin."""

    challenge = "Token"

    async def authenticate(self, ctx: RequestContext) -> Consumer | None:
        value = ctx.request.headers.get("Authorization", "")
        if not value.startswith("Token "):
            return None
        if value == "Token bad":
            raise AuthFailure("unknown token")
        return Consumer(value[6:], configured=False)


class BudgetStage:
    """A TRAFFIC-phase stage that refuses requests beyond a fixed budget (a rate limiter's place)."""

    def __init__(self, budget: int) -> None:
        self.left = budget

    async def __call__(self, ctx: RequestContext, call_next: Handler) -> Response:
        if self.left <= 0:
            return error_response(429, "rate_limited", "budget spent", ctx.request_id)
        self.left -= 1
        return await call_next(ctx)


class BudgetConfig(BaseModel):
    """Settings of the test budget stage."""

    model_config = ConfigDict(extra="forbid")
    budget: int = 100


class HelperPlugins:
    """Registers `test-token` (auth) and `test-budget` (traffic) for the bridge tests."""

    @hookimpl
    def register_authenticators(self, register: Callable[[AuthPlugin[Any]], None]) -> None:
        register(AuthPlugin(name="test-token", build=lambda config, context: TokenAuthenticator()))

    @hookimpl
    def register_rate_limiters(self, register: Callable[[StagePlugin[Any]], None]) -> None:
        register(
            StagePlugin(
                name="test-budget",
                build=lambda config, context: BudgetStage(config.budget),
                config_model=BudgetConfig,
            )
        )
