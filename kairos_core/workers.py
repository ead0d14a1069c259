"""`kairos serve --workers N`: N worker processes share the port; a supervisor owns the admin API.

The supervisor validates the config (plugins included), starts workers from a forkserver (so
they share the imported code's memory), restarts a worker that dies, relays admin actions to
every worker over a pipe, and shuts them all down on SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.machinery
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from kairos_core.admin.inspect import VIEWS
from kairos_core.config.errors import ConfigError
from kairos_core.config.loader import LoadedConfig, load_config
from kairos_core.gateway import Gateway
from kairos_core.metrics import merge
from kairos_core.plugins import PluginHost
from kairos_core.process import (
    DEFAULT_CONFIG_NAME,
    SAMPLE_PATHS,
    ServeInfo,
    ServeOptions,
    apply_overrides,
    log_config_warnings,
    report_compiled,
    run,
    start_admin,
    watch_file,
)
from kairos_core.telemetry.logs import configure_logging
from kairos_core.version import __version__

log = logging.getLogger("kairos.workers")

_RESTART_BACKOFF = 1.0
_PRELOAD = ["kairos_core.workers", "kairos_core.gateway", "kairos_core.builtin"]


@contextlib.contextmanager
def _main_script_not_rerun() -> Iterator[None]:
    """Keep multiprocessing from re-running the parent's main script in a new worker.

    A worker needs nothing from `__main__` (its target lives in this module), yet multiprocessing
    runs the main script again in every child: for the `kairos` script that is the whole CLI,
    about 15 MiB of private memory per worker. Python 3.11's forkserver cannot preload it
    (it drops the main path), so the spec names `__main__` while the process starts, which
    multiprocessing leaves alone.
    """
    main = sys.modules["__main__"]
    saved = getattr(main, "__spec__", None)
    main.__spec__ = importlib.machinery.ModuleSpec("__main__", None)
    try:
        yield
    finally:
        main.__spec__ = saved


# -- worker side ------------------------------------------------------------------------------


def worker_main(
    worker_id: int,
    workers: int,
    loaded: LoadedConfig,
    conn: multiprocessing.connection.Connection,
    log_level: str = "info",
    instance_id: str = "",
) -> None:
    """Entry point of a worker process."""
    configure_logging(log_level, loaded.config.observability.logs.format, worker_id)
    try:
        run(_serve_worker(worker_id, workers, loaded, conn, instance_id))
    except Exception as exc:  # reported to the supervisor, which decides what to do
        with contextlib.suppress(OSError):
            conn.send({"event": "failed", "error": f"{type(exc).__name__}: {exc}"})
        raise SystemExit(1) from None


async def _serve_worker(
    worker_id: int,
    workers: int,
    loaded: LoadedConfig,
    conn: multiprocessing.connection.Connection,
    instance_id: str,
) -> None:
    gateway = Gateway(
        loaded, worker_id=worker_id, workers=workers, reuse_port=True, instance_id=instance_id
    )
    await gateway.start()
    if worker_id == 0:
        report_compiled()
    gc.freeze()  # start-up objects live for good: later collections skip them
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: None)  # the supervisor coordinates reloads

    async def handle(message: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"id": message.get("id")}
        try:
            if message["op"] == "reload":
                await gateway.reload(message["config"])
                reply["ok"] = True
            elif message["op"] == "command":
                reply.update(
                    ok=True, result=await gateway.run_command(message["name"], message["payload"])
                )
            elif message["op"] == "inspect":
                reply.update(ok=True, result=VIEWS[message["view"]](gateway))
            elif message["op"] == "metrics":
                reply.update(ok=True, snapshot=gateway.metrics.snapshot())
            elif message["op"] == "status":
                reply.update(
                    ok=True,
                    routes=len(gateway.runtime.routes),
                    listeners=[b.url for b in gateway.listeners],
                )
            else:
                reply.update(ok=False, error=f"unknown op {message['op']!r}")
        except Exception as exc:
            log.error("worker %d: %s failed: %s", worker_id, message.get("op"), exc)
            reply.update(ok=False, error=str(exc))
        conn.send(reply)

    def readable() -> None:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            log.warning("worker %d: supervisor went away; stopping", worker_id)
            loop.remove_reader(conn.fileno())
            stop.set()
            return
        task = loop.create_task(handle(message))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    tasks: set[asyncio.Task[None]] = set()
    loop.add_reader(conn.fileno(), readable)
    conn.send({"event": "ready", "pid": multiprocessing.current_process().pid})
    try:
        await stop.wait()
    finally:
        loop.remove_reader(conn.fileno())
        await gateway.stop()


# -- supervisor side --------------------------------------------------------------------------


@dataclass
class WorkerSlot:
    """One worker position; its process is replaced when it dies."""

    worker_id: int
    process: multiprocessing.process.BaseProcess | None = None
    conn: multiprocessing.connection.Connection | None = None
    ready: asyncio.Future[None] | None = None
    pending: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    started_at: float = 0.0
    restarts: int = 0
    exited: asyncio.Event = field(default_factory=asyncio.Event)


class WorkerFleet:
    """Starts, watches, restarts and commands the worker processes."""

    def __init__(self, loaded: LoadedConfig, workers: int, log_level: str = "info") -> None:
        self.loaded = loaded
        self.log_level = log_level
        self.slots = [WorkerSlot(i) for i in range(workers)]
        self.context = multiprocessing.get_context("forkserver")
        self.context.set_forkserver_preload(_PRELOAD)
        self.stopping = False
        self._next_id = 0
        self.instance_id = f"{os.getpid()}-{os.urandom(4).hex()}"

    async def start(self) -> None:
        """Start every worker and wait until all serve (raise if one fails to start)."""
        for slot in self.slots:
            self._spawn(slot)
        results = await asyncio.gather(
            *(slot.ready for slot in self.slots if slot.ready), return_exceptions=True
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            await self.stop(2.0)
            raise RuntimeError(str(errors[0]))

    def _spawn(self, slot: WorkerSlot) -> None:
        loop = asyncio.get_running_loop()
        parent_conn, child_conn = self.context.Pipe(duplex=True)
        process = self.context.Process(
            target=worker_main,
            args=(
                slot.worker_id,
                len(self.slots),
                self.loaded,
                child_conn,
                self.log_level,
                self.instance_id,
            ),
            name=f"kairos-worker-{slot.worker_id}",
            daemon=False,
        )
        with _main_script_not_rerun():
            process.start()
        child_conn.close()
        slot.process, slot.conn = process, parent_conn
        slot.ready = loop.create_future()
        slot.exited = asyncio.Event()
        slot.started_at = time.monotonic()
        loop.add_reader(parent_conn.fileno(), self._on_message, slot)
        loop.add_reader(process.sentinel, self._on_exit, slot)

    def _on_message(self, slot: WorkerSlot) -> None:
        assert slot.conn is not None
        try:
            message = slot.conn.recv()
        except (EOFError, OSError):
            asyncio.get_running_loop().remove_reader(slot.conn.fileno())
            return
        event = message.get("event")
        if event == "ready" and slot.ready and not slot.ready.done():
            slot.ready.set_result(None)
        elif event == "failed" and slot.ready and not slot.ready.done():
            slot.ready.set_exception(RuntimeError(f"worker {slot.worker_id}: {message['error']}"))
        elif "id" in message:
            future = slot.pending.pop(message["id"], None)
            if future is not None and not future.done():
                future.set_result(message)

    def _on_exit(self, slot: WorkerSlot) -> None:
        loop = asyncio.get_running_loop()
        process = slot.process
        assert process is not None
        loop.remove_reader(process.sentinel)
        if slot.conn is not None:
            loop.remove_reader(slot.conn.fileno())
            slot.conn.close()
        process.join(0)
        slot.exited.set()
        for future in slot.pending.values():
            if not future.done():
                future.set_result({"ok": False, "error": "worker exited"})
        slot.pending.clear()
        if slot.ready and not slot.ready.done():
            slot.ready.set_exception(
                RuntimeError(
                    f"worker {slot.worker_id} exited with {process.exitcode} while starting"
                )
            )
            return
        if self.stopping:
            return
        log.error(
            "worker %d (pid %s) exited with %s; restarting",
            slot.worker_id,
            process.pid,
            process.exitcode,
        )
        slot.restarts += 1
        delay = max(0.0, _RESTART_BACKOFF - (time.monotonic() - slot.started_at))
        loop.call_later(delay, self._respawn, slot)

    def _respawn(self, slot: WorkerSlot) -> None:
        if self.stopping:
            return
        self._spawn(slot)
        assert slot.ready is not None
        slot.ready.add_done_callback(lambda f: f.exception())  # logged by the worker itself

    async def command(self, op: str, timeout: float = 60.0, **payload: Any) -> list[dict[str, Any]]:
        """Send `op` to every live worker and collect the replies."""
        loop = asyncio.get_running_loop()
        futures = []
        for slot in self.slots:
            if slot.conn is None or slot.process is None or not slot.process.is_alive():
                futures.append(
                    _done({"ok": False, "error": f"worker {slot.worker_id} is not running"})
                )
                continue
            self._next_id += 1
            future: asyncio.Future[dict[str, Any]] = loop.create_future()
            slot.pending[self._next_id] = future
            slot.conn.send({"op": op, "id": self._next_id, **payload})
            futures.append(future)
        try:
            async with asyncio.timeout(timeout):
                return list(await asyncio.gather(*futures))
        except TimeoutError:
            return [
                f.result() if f.done() else {"ok": False, "error": "timed out"} for f in futures
            ]

    def alive(self) -> int:
        """How many workers are running."""
        return sum(1 for s in self.slots if s.process is not None and s.process.is_alive())

    async def stop(self, timeout: float) -> None:
        """SIGTERM every worker, wait up to `timeout`, then SIGKILL what remains."""
        self.stopping = True
        for slot in self.slots:
            if slot.process is not None and slot.process.is_alive():
                slot.process.terminate()
        running = [s for s in self.slots if s.process is not None and not s.exited.is_set()]
        if running:
            await asyncio.wait(
                [asyncio.ensure_future(s.exited.wait()) for s in running], timeout=timeout
            )
        for slot in running:
            process = slot.process
            assert process is not None
            if process.is_alive():
                log.warning("worker %d did not stop in %.0fs; killing it", slot.worker_id, timeout)
                process.kill()
            process.join(1)


def _done(value: dict[str, Any]) -> asyncio.Future[dict[str, Any]]:
    future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    future.set_result(value)
    return future


class FleetControl:
    """The control plane of a multi-worker gateway: admin actions reach every worker."""

    def __init__(self, fleet: WorkerFleet, reload: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        self.fleet = fleet
        self._reload = reload
        self.host = PluginHost()
        self._started = time.monotonic()

    def health(self) -> dict[str, Any]:
        """Ok while every worker runs; degraded otherwise."""
        alive = self.fleet.alive()
        total = len(self.fleet.slots)
        return {
            "status": "ok" if alive == total else "degraded",
            "version": __version__,
            "workers": total,
            "workers_alive": alive,
            "uptime_seconds": round(time.monotonic() - self._started, 3),
            "worker_processes": [
                {
                    "id": slot.worker_id,
                    "pid": slot.process.pid if slot.process else None,
                    "alive": bool(slot.process and slot.process.is_alive()),
                    "restarts": slot.restarts,
                }
                for slot in self.fleet.slots
            ],
        }

    async def readiness(self) -> dict[str, Any]:
        """Ready when every worker answers a status request."""
        replies = await self.fleet.command("status", timeout=5.0)
        checks = {f"worker_{i}": bool(r.get("ok")) for i, r in enumerate(replies)}
        return {"ready": all(checks.values()), "checks": checks}

    async def broadcast(self, command: str, payload: dict[str, Any]) -> list[Any]:
        """Run a plugin command in every worker."""
        replies = await self.fleet.command("command", name=command, payload=payload)
        errors = [r.get("error") for r in replies if not r.get("ok")]
        if errors:
            raise KeyError("; ".join(str(e) for e in errors))
        return [r.get("result") for r in replies]

    async def metrics(self) -> dict[str, Any]:
        """Every worker's snapshot, merged (plus the supervisor's own reload counts)."""
        replies = await self.fleet.command("metrics", timeout=5.0)
        return merge(r["snapshot"] for r in replies if r.get("ok"))

    async def inspect(self, view: str) -> Any:
        """Worker 0's view; for upstreams, in-flight counts summed over all workers."""
        replies = await self.fleet.command("inspect", timeout=5.0, view=view)
        answers = [r["result"] for r in replies if r.get("ok")]
        if not answers:
            raise RuntimeError("no worker answered")
        first = answers[0]
        if view == "upstreams":
            for pool_index, pool in enumerate(first):
                for backend_index, backend in enumerate(pool["backends"]):
                    backend["in_flight"] = sum(
                        a[pool_index]["backends"][backend_index]["in_flight"] for a in answers
                    )
        return first

    async def validate(self, text: str) -> dict[str, Any]:
        """Check a candidate config with the supervisor's plugins."""
        from kairos_core.admin.validate import validate_candidate

        return validate_candidate(text, self.host)

    async def reload(self) -> dict[str, Any]:
        """Validate in the supervisor, then reload every worker."""
        result: dict[str, Any] = await self._reload()
        return result


def _concrete_ports(loaded: LoadedConfig) -> tuple[LoadedConfig, list[socket.socket]]:
    """Replace port 0 on HTTP listeners with a free port all workers can share."""
    holders: list[socket.socket] = []
    data = loaded.config.model_dump()
    changed = False
    for listener in data["listeners"]:
        if listener["protocol"] == "http" and listener["port"] == 0:
            family = socket.AF_INET6 if ":" in listener["host"] else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((listener["host"], 0))
            listener["port"] = sock.getsockname()[1]
            holders.append(sock)
            changed = True
    if not changed:
        return loaded, holders
    from kairos_core.config.loader import validate_config

    return validate_config(data, loaded.source, loaded.lines), holders


def serve_workers(
    loaded: LoadedConfig, options: ServeOptions, on_ready: Callable[[ServeInfo], None]
) -> None:
    """Validate, then run the supervisor until SIGINT/SIGTERM."""
    probe = Gateway(loaded)
    probe.prepare(loaded)  # plugins and plugin settings fail here, before any fork
    admin_routes = probe.registry.admin_routes if probe.registry else []
    run(_supervise(loaded, options, on_ready, admin_routes))


async def _supervise(
    loaded: LoadedConfig,
    options: ServeOptions,
    on_ready: Callable[[ServeInfo], None],
    admin_routes: list[Any],
) -> None:
    loaded, holders = _concrete_ports(loaded)
    fleet = WorkerFleet(
        loaded, options.workers, logging.getLevelName(logging.getLogger().level).lower()
    )
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    lock = asyncio.Lock()

    async def reload() -> dict[str, Any]:
        async with lock:
            if options.config_path is None:
                return {"ok": False, "error": "no config file to reload (started without --config)"}
            try:
                fresh = apply_overrides(load_config(options.config_path), options)
                Gateway(fresh).prepare(fresh)
            except (ConfigError, Exception) as exc:
                log.error("reload refused, keeping the current configuration:\n%s", exc)
                return {"ok": False, "error": str(exc)}
            replies = await fleet.command("reload", config=fresh)
            failed = [r.get("error") for r in replies if not r.get("ok")]
            if failed:
                return {"ok": False, "error": "; ".join(str(f) for f in failed)}
            fleet.loaded = fresh
            log_config_warnings(fresh)
            log.info("configuration reloaded in %d workers", len(replies))
            return {"ok": True, "workers": len(replies)}

    loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(reload()))
    watcher = (
        loop.create_task(watch_file(options.config_path, reload))
        if options.watch and options.config_path
        else None
    )
    try:
        await fleet.start()
    finally:
        for sock in holders:
            sock.close()
    admin = None
    try:
        admin = await start_admin(loaded.config.admin, FleetControl(fleet, reload), admin_routes)
        urls = [
            _listener_url(listener.host, listener.port, listener.tls is not None)
            for listener in loaded.config.listeners
            if listener.protocol == "http"
        ]
        on_ready(
            ServeInfo(
                listeners=urls,
                admin_url=admin[1] if admin else None,
                samples=list(SAMPLE_PATHS) if loaded.source == DEFAULT_CONFIG_NAME else [],
                config_source=f"{loaded.source}, {options.workers} workers",
            )
        )
        await stop.wait()
    finally:
        if watcher is not None:
            watcher.cancel()
        if admin is not None:
            await admin[0].cleanup()
        await fleet.stop(loaded.config.server.shutdown_timeout + 5)


def _listener_url(host: str, port: int, tls: bool) -> str:
    shown = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(host, host)
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"{'https' if tls else 'http'}://{shown}:{port}"
