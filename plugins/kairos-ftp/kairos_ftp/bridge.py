"""The `ftp-bridge` stage: a route whose files live on an FTP pool (GET, HEAD, PUT, DELETE)."""

from __future__ import annotations

import asyncio
import posixpath
import ssl
from collections.abc import Coroutine
from typing import Annotated, Any

from pydantic import BaseModel, ByteSize, ConfigDict, Field, SecretStr, field_validator

from kairos_core import (
    CONNECT_ERROR,
    TIMEOUT,
    Backend,
    BuildContext,
    Handler,
    NoBackendAvailable,
    RequestContext,
    Response,
    UpstreamPool,
    error_response,
)
from kairos_ftp import bridge_ops
from kairos_ftp.backend import BackendRefused
from kairos_ftp.bridge_errors import BridgeError, ftp_path, status_for
from kairos_ftp.channel import ChannelClosed, ProtocolError
from kairos_ftp.client import FtpClient, FtpError
from kairos_ftp.probe import FTP_SCHEMES, install_probes
from kairos_ftp.tls import backend_context, backend_server_name

Seconds = Annotated[float, Field(gt=0)]


class BridgeSettings(BaseModel):
    """The `config:` of the `ftp-bridge` stage."""

    model_config = ConfigDict(extra="forbid")
    upstream: str | None = Field(
        None, description="FTP upstream pool; by default the route's own `upstream`."
    )
    username: str = Field("anonymous", description="FTP user the gateway logs in as.")
    password: SecretStr = Field(
        SecretStr("anonymous@"), description="Its password (use `${ENV}` in the config file)."
    )
    root: str = Field("/", description="FTP directory the route's paths are resolved under.")
    read_only: bool = Field(False, description="Refuse PUT and DELETE (405).")
    listings: bool = Field(True, description="Answer GET on a directory with a JSON listing.")
    atomic_uploads: bool = Field(
        True,
        description="Upload to a temporary name and rename it into place, so a failed PUT "
        "leaves the old file (or nothing) behind.",
    )
    connect_attempts: int = Field(2, ge=1, le=10, description="Backends tried per request.")
    timeout: Seconds = Field(
        15.0, description="Connecting, logging in and each command's reply (seconds)."
    )
    data_timeout: Seconds = Field(
        60.0, description="Longest silence on a data connection while streaming."
    )
    chunk_size: ByteSize = Field(
        ByteSize(256 * 1024), ge=4096, description="Read size when streaming a download."
    )

    @field_validator("root")
    @classmethod
    def _absolute_root(cls, value: str) -> str:
        if not value.startswith("/") or any(c in value for c in "\r\n\0"):
            raise ValueError("must be an absolute FTP path such as `/pub`")
        return posixpath.normpath(value)


class Lease:
    """One backend and its logged-in FTP connection, held for one request."""

    def __init__(self, bridge: FtpBridge, backend: Backend, client: FtpClient) -> None:
        self.bridge = bridge
        self.backend = backend
        self.client = client
        self._done = False

    def done(self, outcome: int, read_final: bool = False) -> None:
        """Report how it went, give the backend back, and say goodbye in the background."""
        if self._done:
            return
        self._done = True
        self.backend.report(outcome)
        self.backend.release()
        self.bridge.background(self._goodbye(read_final))

    async def _goodbye(self, read_final: bool) -> None:
        if read_final:
            try:
                await self.client.final_reply()
            except (OSError, ChannelClosed, ProtocolError):
                self.client.close()
                return
        await self.client.quit()


class FtpBridge:
    """The built stage: answers every request of its route from the FTP pool."""

    def __init__(self, settings: BridgeSettings, pool: UpstreamPool) -> None:
        self.settings = settings
        self.pool = pool
        self._password = settings.password.get_secret_value()
        self._tasks: set[asyncio.Task[None]] = set()
        methods = ["GET", "HEAD"] if settings.read_only else ["GET", "HEAD", "PUT", "DELETE"]
        self.allow = ", ".join(methods)
        self._handlers = {
            "GET": bridge_ops.get,
            "HEAD": bridge_ops.get,
            "PUT": bridge_ops.put,
            "DELETE": bridge_ops.delete,
        }
        if settings.read_only:
            del self._handlers["PUT"], self._handlers["DELETE"]

    async def __call__(self, ctx: RequestContext, call_next: Handler) -> Response:
        """Answer the request from FTP (the chain ends here; `call_next` is never called)."""
        handler = self._handlers.get(ctx.method)
        if handler is None:
            response = error_response(
                405, "method_not_allowed", f"{ctx.method} is not allowed here", ctx.request_id
            )
            response.headers["Allow"] = self.allow
            return response
        try:
            path = ftp_path(self.settings.root, ctx.upstream_path)
            return await handler(self, ctx, path, ctx.upstream_path.endswith("/"))
        except BridgeError as exc:
            response = error_response(exc.status, exc.error_type, exc.message, ctx.request_id)
            response.headers.update(exc.headers)
            return response
        except NoBackendAvailable as exc:
            response = error_response(503, "no_backend_available", str(exc), ctx.request_id)
            response.headers["Retry-After"] = str(max(1, round(exc.retry_after)))
            return response

    async def lease(self, ctx: RequestContext) -> Lease:
        """A logged-in connection to a backend (another one when connecting fails)."""
        settings = self.settings
        tried: list[Backend] = []
        failure = BridgeError(502, "bad_gateway", "no FTP server could be reached")
        for _ in range(settings.connect_attempts):
            pool = self.pool
            try:
                if pool.pick_async is not None:
                    backend = await pool.choose_async(ctx, tried)
                else:
                    backend = pool.choose(ctx, tried)
            except NoBackendAvailable:
                if not tried:
                    raise
                break  # the failure just seen opened the last circuit: report that failure
            if backend in tried:
                break
            tried.append(backend)
            backend.attempt()
            tls = backend_context(pool) if backend.scheme == "ftps" else None
            try:
                client = await FtpClient.open(
                    backend.host,
                    backend.port,
                    settings.username,
                    self._password,
                    settings.timeout,
                    tls,
                    backend_server_name(pool, backend.host),
                )
            except TimeoutError:
                outcome = TIMEOUT
                failure = BridgeError(504, "gateway_timeout", "the FTP server did not answer")
            except FtpError as exc:  # it answered, but refused the login: no use trying others
                backend.report(502)
                backend.release()
                raise status_for(exc) from None
            except (OSError, ssl.SSLError, ChannelClosed, ProtocolError, BackendRefused):
                outcome = CONNECT_ERROR
            else:
                return Lease(self, backend, client)
            backend.report(outcome)
            backend.release()
        raise failure

    def background(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run a goodbye after the response (kept until done, awaited on close)."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Wait for pending goodbyes (the configuration is being retired)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=2.0)


def _route_pool(settings: BridgeSettings, context: BuildContext) -> str:
    if settings.upstream is not None:
        return settings.upstream
    for route in context.services.config.routes:
        if route.display_name == context.route_name:
            if isinstance(route.upstream, str):
                return route.upstream
            return f"route:{context.route_name}"
    raise ValueError("set `upstream`: outside a route there is no route upstream to use")


def build_bridge(settings: BridgeSettings, context: BuildContext) -> FtpBridge:
    """Build the stage for one scope (the StagePlugin's `build`)."""
    name = _route_pool(settings, context)
    pool = context.services.pools.get(name)
    if pool is None:
        raise ValueError(f"unknown upstream {name!r}")
    wrong = [b.url for b in pool.backends if b.scheme not in FTP_SCHEMES]
    if wrong:
        raise ValueError(
            f"upstream {name!r} has non-FTP backends ({', '.join(wrong)}); use ftp:// or ftps://"
        )
    install_probes([pool])
    return FtpBridge(settings, pool)
