"""A gateway in one process: plugins, the current runtime, HTTP listeners and protocol services."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kairos_core.config.errors import ConfigError, ConfigProblem
from kairos_core.config.loader import LoadedConfig
from kairos_core.config.models import ListenerConfig, ListenerTLS
from kairos_core.config.observability import AccessLogConfig
from kairos_core.forwarding import TrustedProxies
from kairos_core.metrics import Metrics
from kairos_core.plugins import MissingPlugins, PluginHost, Registry
from kairos_core.runtime import Runtime, build_runtime, plugin_references
from kairos_core.server.handler import HttpEntry, HttpSettings
from kairos_core.server.lean_protocol import LeanServer
from kairos_core.server.protocol import KairosServer
from kairos_core.server.proxy_protocol import ProxyProtocolReader
from kairos_core.server.redirect import redirect_handler
from kairos_core.telemetry.access_log import AccessLog
from kairos_core.telemetry.core_metrics import CoreMetrics, forget_backends, watch_backends
from kairos_core.telemetry.observer import RequestObserver
from kairos_core.tls import ServerTLS

log = logging.getLogger("kairos.gateway")


@dataclass
class BoundListener:
    """A listening socket and the HTTP server behind it."""

    config: ListenerConfig
    server: asyncio.AbstractServer
    http: KairosServer | LeanServer
    url: str
    tls: ServerTLS | None = None


class Gateway:
    """Builds the runtime from a config, serves it, and swaps in new configs on reload."""

    def __init__(
        self,
        loaded: LoadedConfig,
        *,
        host: PluginHost | None = None,
        worker_id: int = 0,
        workers: int = 1,
        reuse_port: bool = False,
        instance_id: str | None = None,
    ) -> None:
        self._loaded = loaded
        self.host = host or PluginHost()
        self.worker_id = worker_id
        self.workers = workers
        self.reuse_port = reuse_port
        self.instance_id = instance_id or f"{os.getpid()}-{os.urandom(4).hex()}"
        self.listeners: list[BoundListener] = []
        self.services: list[tuple[ListenerConfig, Any]] = []
        self._runtime: Runtime | None = None
        self._settings: HttpSettings | None = None
        self._current: tuple[Runtime, HttpSettings] | None = None
        self.registry: Registry | None = None
        self.metrics = Metrics()
        self.core = CoreMetrics(self.metrics)
        self.core.open_connections.set_function(
            lambda: float(sum(b.http.open_connections() for b in self.listeners))
        )
        self.access_log: AccessLog | None = None
        self._retiring: set[asyncio.Task[None]] = set()

    @property
    def runtime(self) -> Runtime:
        """The configuration now serving traffic."""
        assert self._runtime is not None, "gateway not started"
        return self._runtime

    def current(self) -> tuple[Runtime, HttpSettings]:
        """The runtime and per-request settings for the next request."""
        assert self._current is not None
        return self._current

    def prepare(self, loaded: LoadedConfig) -> Runtime:
        """Load the plugins `loaded` needs and build its runtime (no sockets, nothing started)."""
        builtin = self.host.registry().names()
        references = plugin_references(loaded.config)
        missing: list[ConfigProblem] = []
        try:
            self.host.load(n for n in references if n not in builtin)
        except MissingPlugins as exc:
            missing = [
                loaded.problem(
                    loc,
                    f"plugin {name!r} is not installed (no entry point {name!r} in group "
                    "'kairos'; `kairos plugins list` shows what is)",
                )
                for name in exc.names
                for loc in references[name]
            ]
        self.registry = self.host.registry()
        try:
            runtime = build_runtime(
                loaded,
                self.registry,
                worker_id=self.worker_id,
                workers=self.workers,
                metrics=self.metrics,
                instance_id=self.instance_id,
                core=self.core if loaded.config.observability.metrics.enabled else None,
            )
        except ConfigError as exc:
            if not missing:
                raise
            reported = {p.loc for p in missing}
            others = [p for p in exc.problems if p.loc not in reported]
            raise ConfigError(loaded.source, missing + others) from None
        if missing:
            raise ConfigError(loaded.source, missing)
        return runtime

    async def run_command(self, name: str, payload: dict[str, Any]) -> Any:
        """Run a plugin's named command (see GatewayServices.commands) in this process."""
        command = self.runtime.services.commands.get(name)
        if command is None:
            raise KeyError(f"no command {name!r} (is the plugin that provides it enabled?)")
        return await command(payload)

    async def start(self) -> None:
        """Build the configuration, start its plugins, then open every listener."""
        runtime = self.prepare(self._loaded)
        await self._activate(runtime)
        try:
            for listener in runtime.config.listeners:
                if listener.protocol == "http":
                    self.listeners.append(await self._listen(listener))
            await self._start_services(runtime, runtime.config.listeners)
        except BaseException:
            await self.stop(0.5)
            raise

    async def _activate(self, runtime: Runtime) -> None:
        await runtime.start()
        for result in self.host.call("kairos_startup", services=runtime.services):
            if inspect.isawaitable(result):
                await result
        self._configure_access_log(runtime.config.observability.access_log)
        metrics_on = runtime.config.observability.metrics.enabled
        if metrics_on:
            watch_backends(self.core, runtime.pools)
        observer = RequestObserver(self.core if metrics_on else None, self.access_log)
        self._runtime = runtime
        self._settings = HttpSettings(runtime, observer)
        self._current = (runtime, self._settings)

    def _configure_access_log(self, config: AccessLogConfig) -> None:
        """Open the access log, or reopen it when a reload changed where or how it is written."""
        current = self.access_log
        if current is not None and current.config == config:
            return
        if current is not None:
            current.close()
        self.access_log = None
        if config.enabled:
            self.access_log = AccessLog(config)
            self.access_log.start()

    async def _listen(self, listener: ListenerConfig) -> BoundListener:
        loop = asyncio.get_running_loop()
        server_config = self._loaded.config.server
        tls = ServerTLS(listener.tls) if listener.tls else None
        ssl_context = tls.context if tls else None
        scheme = "https" if ssl_context else "http"
        if listener.redirect_to_https:
            handler: Any = redirect_handler(listener.redirect_to_https)
        else:
            handler = HttpEntry(self.current, scheme)
        http = KairosServer(
            handler,
            handler_cancellation=True,
            access_log=None,
            keepalive_timeout=server_config.keepalive_timeout,
            header_timeout=server_config.header_timeout,
            max_connections=server_config.max_connections,
            refused=self.core.connections_refused,
            max_line_size=server_config.max_header_size,
            max_field_size=server_config.max_header_size,
            max_headers=server_config.max_headers,
            auto_decompress=False,  # a proxy forwards request bodies exactly as they came
        )
        front: KairosServer | LeanServer = http
        if server_config.engine == "lean" and isinstance(handler, HttpEntry):
            front = LeanServer(handler, http, server_config, self.core.connections_refused)
        factory: Any = front
        if listener.proxy_protocol:
            trusted = TrustedProxies(server_config.trusted_proxies)
            factory = lambda: ProxyProtocolReader(front, ssl_context, trusted)  # noqa: E731
        server = await loop.create_server(
            factory,
            listener.host,
            listener.port,
            ssl=None if listener.proxy_protocol else ssl_context,
            reuse_port=self.reuse_port or None,
            reuse_address=True,
            backlog=1024,
        )
        port = _bound_port(server, listener.port)
        shown_host = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(listener.host, listener.host)
        if ":" in shown_host and not shown_host.startswith("["):
            shown_host = f"[{shown_host}]"
        url = f"{scheme}://{shown_host}:{port}"
        log.info("listening on %s (%s)", url, listener.name or "http")
        return BoundListener(listener, server, front, url, tls)

    async def _start_services(self, runtime: Runtime, listeners: Iterable[ListenerConfig]) -> None:
        assert self.registry is not None
        for index, listener in enumerate(listeners):
            if listener.protocol == "http":
                continue
            plugin = self.registry.protocols[listener.protocol]
            if not plugin.every_worker and self.worker_id != 0:
                continue
            settings = runtime.listener_settings[index]
            try:
                service = await plugin.start(listener, settings, runtime.services)
            except OSError as exc:
                raise OSError(
                    f"listeners[{index}] ({listener.protocol} on {listener.host}:{listener.port}): {exc.strerror or exc}"
                ) from exc
            self.services.append((listener, service))

    async def reload(self, loaded: LoadedConfig) -> None:
        """Build `loaded` aside, swap it in at once, then retire the old runtime when idle."""
        try:
            certificates = self._load_certificates(loaded)
            runtime = self.prepare(loaded)
        except Exception:
            self.core.reloads.labels("failure").inc()
            raise
        for tls, listener_tls, contexts in certificates:
            tls.install(listener_tls, contexts)
        self.core.reloads.labels("success").inc()
        old = self._runtime
        if old is not None:
            forget_backends(self.core, old.pools, runtime.pools)
        if old is not None:
            runtime.adopt(old)
        await self._activate(runtime)
        self._loaded = loaded
        if old is not None:
            await old.stop_background()
            task = asyncio.get_running_loop().create_task(self._retire(old))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    def _load_certificates(
        self, loaded: LoadedConfig
    ) -> list[tuple[ServerTLS, ListenerTLS, list[ssl.SSLContext]]]:
        """Read again the certificates of every bound HTTPS listener the new config still has."""
        wanted = {(new.host, new.port): new.tls for new in loaded.config.listeners if new.tls}
        staged = []
        for bound in self.listeners:
            listener_tls = wanted.get((bound.config.host, bound.config.port))
            if bound.tls is not None and listener_tls is not None:
                staged.append((bound.tls, listener_tls, ServerTLS.build(listener_tls)))
        return staged

    async def _retire(self, old: Runtime, poll: float = 0.5) -> None:
        """Close a replaced runtime once the requests and streams that started on it are over."""
        try:
            while old.in_flight > 0:  # noqa: ASYNC110 - a plain counter keeps the hot path cheap
                await asyncio.sleep(poll)
        finally:
            await self._close_runtime(old)

    async def _close_runtime(self, runtime: Runtime) -> None:
        for result in self.host.call("kairos_shutdown", services=runtime.services):
            if inspect.isawaitable(result):
                await result
        await runtime.close()

    async def stop(self, timeout: float | None = None) -> None:
        """Stop accepting, let in-flight requests finish up to `timeout`, then close everything."""
        if timeout is None:
            timeout = self._loaded.config.server.shutdown_timeout
        for bound in self.listeners:
            bound.server.close()
            bound.http.pre_shutdown()  # idle keep-alive connections close now, busy ones after
        for bound in self.listeners:
            try:
                await asyncio.wait_for(bound.http.shutdown(timeout), timeout + 1)
            except TimeoutError:
                log.warning("listener %s: requests still running after %.1fs", bound.url, timeout)
        for bound in self.listeners:
            await bound.server.wait_closed()
        self.listeners.clear()
        for _listener, service in reversed(self.services):
            try:
                await service.close()
            except Exception:
                log.exception("closing %s failed", _listener.protocol)
        self.services.clear()
        for task in list(self._retiring):
            task.cancel()
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)
        if self._runtime is not None:
            await self._close_runtime(self._runtime)
            self._runtime = None
        if self.access_log is not None:
            self.access_log.close()
            self.access_log = None


def _bound_port(server: asyncio.AbstractServer, requested: int) -> int:
    sockets = getattr(server, "sockets", None) or ()
    for sock in sockets:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            return int(sock.getsockname()[1])
    return requested
