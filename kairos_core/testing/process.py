"""Run `kairos serve` as a real subprocess for tests of the CLI, signals and workers."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Sequence

_URL_RE = re.compile(r"(https?://\S+)")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (for processes that need a fixed port)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


async def wait_for_port(port: int, timeout: float = 20.0, host: str = "127.0.0.1") -> None:
    """Return once something accepts TCP connections on `port` (raise OSError after `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection(host, port)
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


class GatewayProcess:
    """`python -m kairos_cli serve ARGS` in a subprocess; `start()` waits until it serves."""

    def __init__(
        self, args: Sequence[str], env: dict[str, str] | None = None, cwd: str | None = None
    ) -> None:
        self.args = list(args)
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd
        self.proc: asyncio.subprocess.Process | None = None
        self.urls: list[str] = []
        self.stdout_lines: list[str] = []
        self.stderr_lines: list[str] = []
        self._stderr_task: asyncio.Task[None] | None = None
        self._stdout_task: asyncio.Task[None] | None = None
        self._terminating = False

    @property
    def url(self) -> str:
        """The first proxy URL printed (no trailing slash)."""
        return self.urls[0].rstrip("/")

    @property
    def admin_url(self) -> str | None:
        """The admin base URL printed, if any."""
        for line in self.stdout_lines:
            if line.strip().startswith("admin"):
                found = _URL_RE.search(line)
                if found:
                    return found.group(1).removesuffix("/health")
        return None

    async def start(self, timeout: float = 30.0) -> GatewayProcess:
        """Spawn and wait for the ready banner; raise with its stderr if it exits first."""
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "kairos_cli",
            "serve",
            *self.args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env,
            cwd=self.cwd,
        )
        self._stderr_task = asyncio.create_task(self._drain_stderr())
        try:
            async with asyncio.timeout(timeout):
                await self._read_banner()
        except BaseException:
            await self.stop()
            raise
        # keep reading stdout (access log lines): a full pipe would block the gateway
        self._stdout_task = asyncio.create_task(self._drain_stdout())
        return self

    async def _drain_stdout(self) -> None:
        assert self.proc is not None
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            if len(self.stdout_lines) < 10_000:
                self.stdout_lines.append(raw.decode(errors="replace"))

    async def _read_banner(self) -> None:
        assert self.proc is not None
        assert self.proc.stdout is not None
        while True:
            raw = await self.proc.stdout.readline()
            if not raw:
                await self.proc.wait()
                await asyncio.sleep(0.1)
                raise RuntimeError(
                    f"kairos serve exited with {self.proc.returncode}:\n"
                    + "".join(self.stderr_lines)
                )
            line = raw.decode()
            self.stdout_lines.append(line)
            if line.startswith("Press Ctrl+C"):
                return
            if line.strip().startswith("proxy"):
                found = _URL_RE.search(line)
                if found:
                    self.urls.append(found.group(1))

    async def _drain_stderr(self) -> None:
        assert self.proc is not None
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            self.stderr_lines.append(raw.decode(errors="replace"))

    def signal(self, signum: int) -> None:
        """Send a signal to the gateway process."""
        assert self.proc is not None
        if signum in (signal.SIGTERM, signal.SIGINT):
            self._terminating = True
        self.proc.send_signal(signum)

    async def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, wait (SIGKILL after `timeout`), return the exit code."""
        proc = self.proc
        if proc is None:
            return None
        if proc.returncode is None:
            if not self._terminating:
                proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(timeout):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
        for task in (self._stderr_task, self._stdout_task):
            if task is None:
                continue
            try:
                async with asyncio.timeout(2):
                    await task
            except TimeoutError:
                task.cancel()
        return proc.returncode
