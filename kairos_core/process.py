"""Running `kairos serve`: config resolution, event loop, signals, admin listener, reload."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

from aiohttp import web

from kairos_core.admin.app import build_admin_app
from kairos_core.compiled import compiled_modules, stale_modules
from kairos_core.config.errors import ConfigError
from kairos_core.config.loader import LoadedConfig, load_config, load_config_text, validate_config
from kairos_core.config.models import AdminConfig
from kairos_core.gateway import Gateway
from kairos_core.version import __version__

log = logging.getLogger("kairos")

DEFAULT_CONFIG_NAME = "embedded default config"


@dataclass
class ServeOptions:
    """What `kairos serve` was asked to do."""

    config_path: str | None = None
    host: str | None = None
    port: int | None = None
    workers: int = 1
    upstream: str | None = None
    admin: str | None = None
    """`host:port` of the admin listener, or `off`."""
    watch: bool = False
    """Reload when the config file changes."""


@dataclass
class ServeInfo:
    """Where a started gateway can be reached."""

    listeners: list[str]
    admin_url: str | None
    samples: list[str] = field(default_factory=list)
    config_source: str = ""


def default_config_text() -> str:
    """The embedded default configuration (a demo backend plus a few routes)."""
    return files("kairos_core.config").joinpath("default.yaml").read_text(encoding="utf-8")


SAMPLE_PATHS = ("/hello", "/api/items", "/api/items/2", "/echo?from=kairos", "/events")


def resolve_config(options: ServeOptions) -> LoadedConfig:
    """The configuration to serve: a file, `--upstream`, or the embedded default."""
    if options.upstream and options.config_path:
        raise ConfigError.single(
            "command line", ("--upstream",), "use either --config or --upstream"
        )
    if options.upstream:
        data: dict[str, Any] = {
            "listeners": [{"host": options.host or "127.0.0.1", "port": options.port or 8080}],
            "routes": [
                {
                    "name": "upstream",
                    "prefix": "/",
                    "upstream": {"backends": [{"url": options.upstream}]},
                }
            ],
        }
        loaded = validate_config(data, "--upstream")
    elif options.config_path:
        loaded = load_config(options.config_path)
    else:
        loaded = load_config_text(default_config_text(), DEFAULT_CONFIG_NAME)
    return apply_overrides(loaded, options)


def apply_overrides(loaded: LoadedConfig, options: ServeOptions) -> LoadedConfig:
    """Apply --host/--port (to the first HTTP listener) and --admin to a loaded config."""
    if not (options.host or options.port is not None or options.admin):
        return loaded
    data = loaded.config.model_dump()
    if options.host or options.port is not None:
        for listener in data["listeners"]:
            if listener["protocol"] == "http":
                if options.host:
                    listener["host"] = options.host
                if options.port is not None:
                    listener["port"] = options.port
                break
    if options.admin == "off":
        data["admin"]["enabled"] = False
    elif options.admin:
        host, _, port = options.admin.rpartition(":")
        if not port.isdigit():
            raise ConfigError.single("command line", ("--admin",), "expected HOST:PORT or off")
        data["admin"]["host"] = host.strip("[]") or data["admin"]["host"]
        data["admin"]["port"] = int(port)
    overridden = validate_config(data, loaded.source, loaded.lines, loaded.warnings)
    return dataclasses.replace(overridden, env_values=loaded.env_values)


def log_config_warnings(loaded: LoadedConfig) -> None:
    """Log what a config loaded with warnings about (such as seed settings without equivalent)."""
    for warning in loaded.warnings:
        log.warning("config: %s", warning)


class LocalControl:
    """The control plane of a single-process gateway."""

    def __init__(
        self, gateway: Gateway, reload: Callable[[], Awaitable[dict[str, Any]]] | None = None
    ) -> None:
        self.gateway = gateway
        self._reload = reload
        self._started = time.monotonic()

    def health(self) -> dict[str, Any]:
        """Up, with the number of routes being served."""
        return {
            "status": "ok",
            "version": __version__,
            "routes": len(self.gateway.runtime.routes),
            "workers": 1,
            "uptime_seconds": round(time.monotonic() - self._started, 3),
        }

    async def readiness(self) -> dict[str, Any]:
        """Ready once listeners are bound and a configuration is active."""
        checks = {"config": True, "listeners": bool(self.gateway.listeners)}
        return {"ready": all(checks.values()), "checks": checks}

    async def broadcast(self, command: str, payload: dict[str, Any]) -> list[Any]:
        """Run a plugin command in this (the only) process."""
        return [await self.gateway.run_command(command, payload)]

    async def metrics(self) -> dict[str, Any]:
        """This process's metrics snapshot."""
        return self.gateway.metrics.snapshot()

    async def inspect(self, view: str) -> Any:
        """A read-only view of the running gateway."""
        from kairos_core.admin.inspect import VIEWS

        return VIEWS[view](self.gateway)

    async def validate(self, text: str) -> dict[str, Any]:
        """Check a candidate config with this process's plugins."""
        from kairos_core.admin.validate import validate_candidate

        return validate_candidate(text, self.gateway.host)

    async def reload(self) -> dict[str, Any]:
        """Reload the config file (refused when started without one)."""
        if self._reload is None:
            return {"ok": False, "error": "this gateway was not started from a config file"}
        return await self._reload()


async def start_admin(
    config: AdminConfig, control: Any, extra_routes: Any = ()
) -> tuple[web.AppRunner, str] | None:
    """Start the admin listener; returns its runner and base URL (None when disabled)."""
    if not config.enabled:
        return None
    app = build_admin_app(control, config, extra_routes)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, reuse_address=True)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    port = config.port
    server = getattr(site, "_server", None)
    if port == 0 and server is not None and server.sockets:
        port = server.sockets[0].getsockname()[1]
    host = config.host if ":" not in config.host else f"[{config.host}]"
    return runner, f"http://{host}:{port}"


async def serve_single(
    loaded: LoadedConfig,
    options: ServeOptions,
    on_ready: Callable[[ServeInfo], None],
    stop: asyncio.Event | None = None,
) -> None:
    """Run one gateway process until SIGINT/SIGTERM (or `stop`); SIGHUP reloads the file."""
    log.info("event loop: %s", type(asyncio.get_running_loop()).__module__.split(".")[0])
    gateway = Gateway(loaded)
    await gateway.start()
    report_compiled()  # after start: the plugins' modules are imported by now
    gc.freeze()  # start-up objects live for good: later collections skip them
    stop = stop or asyncio.Event()
    reload_lock = asyncio.Lock()

    async def reload() -> dict[str, Any]:
        async with reload_lock:
            if options.config_path is None:
                return {"ok": False, "error": "no config file to reload (started without --config)"}
            try:
                fresh = apply_overrides(load_config(options.config_path), options)
                await gateway.reload(fresh)
                log_config_warnings(fresh)
            except (ConfigError, Exception) as exc:  # keep serving the old config
                log.error("reload failed, keeping the current configuration:\n%s", exc)
                return {"ok": False, "error": str(exc)}
            log.info("configuration reloaded from %s", options.config_path)
            return {"ok": True}

    control = LocalControl(gateway, reload)
    stop_tasks: list[asyncio.Task[None]] = []
    registry = gateway.registry
    admin = None
    try:
        admin = await start_admin(
            loaded.config.admin, control, registry.admin_routes if registry else ()
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(reload()))
        if options.watch and options.config_path:
            watcher = loop.create_task(watch_file(options.config_path, reload))
            stop_tasks.append(watcher)
        on_ready(
            ServeInfo(
                listeners=[b.url for b in gateway.listeners],
                admin_url=admin[1] if admin else None,
                samples=list(SAMPLE_PATHS) if loaded.source == DEFAULT_CONFIG_NAME else [],
                config_source=loaded.source,
            )
        )
        await stop.wait()
        log.info(
            "shutting down: waiting up to %.0fs for in-flight requests",
            loaded.config.server.shutdown_timeout,
        )
    finally:
        for task in stop_tasks:
            task.cancel()
        if admin is not None:
            await admin[0].cleanup()
        await gateway.stop()


async def watch_file(
    path: str, on_change: Callable[[], Awaitable[Any]], interval: float = 1.0
) -> None:
    """Call `on_change` whenever the file's size or modification time changes (polling)."""

    def signature() -> tuple[int, int] | None:
        try:
            status = os.stat(path)
        except OSError:
            return None
        return status.st_mtime_ns, status.st_size

    last = signature()
    while True:
        await asyncio.sleep(interval)
        current = signature()
        if current is not None and current != last:
            last = current
            log.info("%s changed: reloading", path)
            await on_change()


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when installed, asyncio's otherwise."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def raise_open_file_limit() -> None:
    """Allow as many open sockets as the hard limit permits (each client connection uses one)."""
    try:
        import resource
    except ImportError:  # not on this platform
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            log.debug("could not raise the open file limit from %d to %d", soft, hard)


def report_compiled() -> None:
    """Say how many modules run compiled; warn about compiled modules older than their source."""
    compiled = compiled_modules()
    if not compiled:
        return
    log.info("hot path: %d modules compiled with mypyc", len(compiled))
    stale = stale_modules()
    if stale:
        log.warning(
            "compiled modules are older than their source and run the old code: %s "
            "(run tools/compile_hot_path.py again, or with --clean)",
            ", ".join(stale),
        )


def run(coro: Any) -> Any:
    """Run a coroutine to completion on a fresh (uvloop when available) event loop."""
    raise_open_file_limit()
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(coro)
