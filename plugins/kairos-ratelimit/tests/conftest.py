"""Redis servers the rate-limit tests start themselves: one to stop mid-test, and a cluster."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from redis.asyncio import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from kairos_core.testing import require_service
from kairos_core.testing.process import free_port


class RedisServer:
    """A `redis-server` child process on a loopback port; can be stopped and started again."""

    def __init__(
        self, directory: Path, port: int | None = None, *extra: str, password: str | None = None
    ) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.extra = extra
        self.password = password
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.proc = await asyncio.create_subprocess_exec(
            "redis-server",
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.directory),
            "--logfile", str(self.directory / "redis.log"),
            *self.extra,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        client = Redis(
            host="127.0.0.1", port=self.port, password=self.password, retry=Retry(NoBackoff(), 0)
        )
        try:
            for _ in range(250):
                if self.proc.returncode is not None:
                    break
                with contextlib.suppress(RedisError, OSError):
                    if await client.ping():
                        return self
                await asyncio.sleep(0.02)
        finally:
            await client.aclose()
        log = self.directory / "redis.log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError(f"redis-server on port {self.port} did not start:\n{tail}")

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()


def _need_redis_binaries() -> None:
    found = shutil.which("redis-server") is not None and shutil.which("redis-cli") is not None
    require_service("redis-server and redis-cli", found, "apt-get install redis-server")


@pytest.fixture
def private_dir() -> Iterator[Path]:
    """A temporary directory of this test alone.

    Unlike `tmp_path`, no other pytest run on the machine prunes it while the test runs.
    """
    path = Path(tempfile.mkdtemp(prefix="kairos-ratelimit-test-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest_asyncio.fixture
async def own_redis(private_dir: Path) -> AsyncIterator[RedisServer]:
    """A Redis only this test uses (to stop, pause or flush)."""
    _need_redis_binaries()
    server = await RedisServer(private_dir / "redis").start()
    try:
        yield server
    finally:
        await server.stop()


@pytest_asyncio.fixture
async def start_redis(private_dir: Path) -> AsyncIterator[Callable[..., Awaitable[RedisServer]]]:
    """Start Redis servers with extra arguments: `await start_redis("--requirepass", "x")`."""
    _need_redis_binaries()
    servers: list[RedisServer] = []

    async def start(*extra: str, password: str | None = None) -> RedisServer:
        server = RedisServer(private_dir / f"redis{len(servers)}", None, *extra, password=password)
        servers.append(server)
        return await server.start()

    try:
        yield start
    finally:
        await asyncio.gather(*(server.stop() for server in servers))


@pytest_asyncio.fixture
async def redis_cluster(private_dir: Path) -> AsyncIterator[list[RedisServer]]:
    """Three cluster-enabled masters joined with `redis-cli --cluster create`."""
    _need_redis_binaries()
    nodes = [
        RedisServer(
            private_dir / f"node{i}",
            None,
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            str(private_dir / f"node{i}" / "nodes.conf"),
            "--cluster-port",  # not port + 10000, which may be taken or above 65535
            str(free_port()),
            "--cluster-node-timeout",
            "2000",
        )
        for i in range(3)
    ]
    try:
        async with asyncio.timeout(30):  # fixtures have no pytest-timeout here: never hang
            await _create_cluster(nodes)
        yield nodes
    finally:
        await asyncio.gather(*(node.stop() for node in nodes))


async def _create_cluster(nodes: list[RedisServer]) -> None:
    await asyncio.gather(*(node.start() for node in nodes))
    create = await asyncio.create_subprocess_exec(
        "redis-cli", "--cluster", "create",
        *(f"127.0.0.1:{node.port}" for node in nodes),
        "--cluster-replicas", "0", "--cluster-yes",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        output, _ = await create.communicate()
    finally:
        if create.returncode is None:
            create.kill()
            await create.wait()
    assert create.returncode == 0, output.decode(errors="replace")
    await _wait_cluster_ok(nodes)


async def _wait_cluster_ok(nodes: list[RedisServer]) -> None:
    for node in nodes:
        client = Redis(host="127.0.0.1", port=node.port, decode_responses=True)
        try:
            for _ in range(250):
                info = await client.execute_command("CLUSTER", "INFO")
                text = info if isinstance(info, str) else str(info)
                if "cluster_state:ok" in text:
                    break
                await asyncio.sleep(0.02)
            else:
                raise RuntimeError(f"cluster node {node.port} never reached cluster_state:ok")
        finally:
            await client.aclose()


@pytest.fixture
def key_prefix() -> str:
    """A key prefix no other test (or helper sharing the Redis) uses."""
    return f"kairos-test:{uuid.uuid4().hex[:12]}:"


@pytest_asyncio.fixture
async def clean_redis(redis_url: str, key_prefix: str) -> AsyncIterator[str]:
    """The shared local Redis; the test's keys (under `key_prefix`) are deleted afterwards."""
    yield redis_url
    client = Redis.from_url(redis_url)
    keys = [key async for key in client.scan_iter(match=key_prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()
