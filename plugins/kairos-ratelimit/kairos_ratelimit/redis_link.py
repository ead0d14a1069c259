"""One Redis client per URL and settings, shared by every limit, with automatic pipelining.

Checks that arrive in the same event-loop turn leave together as one pipelined write, and
at most `max_connections` such batches are in flight, so a few connections serve many
concurrent requests. Scripts run by EVALSHA and are reloaded when Redis answers NOSCRIPT.
When Redis fails or is slow, every waiting check fails fast with `BackendUnavailable` and
the link stays "down" for `retry_interval`, then tries again by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import time
from collections.abc import Sequence
from typing import Any

from hiredis import pack_command  # C packing: several times faster than redis-py's own
from redis.asyncio import Redis, RedisCluster
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.retry import Retry

from kairos_ratelimit.algorithms import BackendUnavailable
from kairos_ratelimit.config import RedisSettings

log = logging.getLogger("kairos.ratelimit")

Pending = tuple[str, str, Sequence[str], Sequence[Any], "asyncio.Future[Any]", float]


def make_client(settings: RedisSettings) -> Redis | RedisCluster:
    """A redis-py asyncio client for `settings` (no I/O until first use)."""
    url = settings.url
    if settings.tls and url.startswith("redis://"):
        url = "rediss://" + url.removeprefix("redis://")
    options: dict[str, Any] = {
        "socket_timeout": settings.timeout * 5,
        "socket_connect_timeout": settings.timeout * 5,
        "retry": Retry(NoBackoff(), 0),
        "max_connections": settings.max_connections,
    }
    if settings.password is not None:
        options["password"] = settings.password.get_secret_value()
    if settings.username is not None:
        options["username"] = settings.username
    if url.startswith("rediss://"):
        options.update(
            ssl_ca_certs=settings.tls_ca_file,
            ssl_certfile=settings.tls_cert_file,
            ssl_keyfile=settings.tls_key_file,
            ssl_cert_reqs="required" if settings.tls_verify else "none",
            ssl_check_hostname=settings.tls_verify,
        )
    if settings.cluster:
        return RedisCluster.from_url(url, **options)
    return Redis.from_url(url, **options)


def _evalsha(item: Pending) -> tuple[Any, ...]:
    sha, _text, keys, args, _future, _queued = item
    return ("EVALSHA", sha, len(keys), *keys, *args)


async def _round_trip(connection: Any, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    """Send every command in one write, then read every reply (errors as values)."""
    payload = b"".join(pack_command(command) for command in commands)
    await connection.send_packed_command(payload, check_health=False)
    results: list[Any] = []
    for _ in commands:
        try:
            results.append(await connection.read_response(timeout=math.inf))
        except ResponseError as exc:
            results.append(exc)
    return results


def script_sha(text: str) -> str:
    """The SHA1 Redis knows a script by."""
    return hashlib.sha1(text.encode()).hexdigest()


class RedisLink:
    """A shared client plus the batcher every Redis-backed limit sends its scripts through."""

    def __init__(self, settings: RedisSettings, name: str) -> None:
        self.settings = settings
        self.name = name
        self.identity = ""
        self.client: Redis | RedisCluster | None = None
        self.users = 0
        self.down_until = 0.0
        self.failures = 0
        self.on_failure: list[Any] = []
        self._queue: list[Pending] = []
        self._inflight = 0
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._scripts: dict[str, str] = {}

    def start(self) -> None:
        """Create the client and connect in the background (startup does not wait for Redis)."""
        if self.client is None:
            self.client = make_client(self.settings)
            task = asyncio.get_running_loop().create_task(self._warm_up(self.client))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _warm_up(self, client: Redis | RedisCluster) -> None:
        """Open a connection (TLS handshake, AUTH, cluster slots) before the first check needs it."""
        try:
            async with asyncio.timeout(self.settings.timeout * 20):
                if isinstance(client, RedisCluster):
                    await client.initialize()
                else:
                    await client.ping()
        except (RedisError, OSError, TimeoutError) as exc:
            log.info("rate-limit: Redis %s not reachable yet: %s", self.name, exc)

    async def close(self) -> None:
        """Let queued and in-flight checks finish (briefly), then close every connection."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.timeout * 2
        while (self._queue or self._tasks) and loop.time() < deadline:
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=deadline - loop.time())
            else:
                await asyncio.sleep(0.001)
        for task in self._tasks:
            task.cancel()
        if self.client is not None:
            client, self.client = self.client, None
            await client.aclose()

    @property
    def available(self) -> bool:
        """False while a recent failure keeps the link down."""
        return time.monotonic() >= self.down_until

    def run(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> asyncio.Future[Any]:
        """Queue one EVALSHA; the returned future gets its reply or `BackendUnavailable`."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if self.client is None or time.monotonic() < self.down_until:
            future.set_exception(BackendUnavailable(f"Redis {self.name} is unavailable"))
            return future
        sha = self._scripts.get(script)
        if sha is None:
            sha = self._scripts[script] = script_sha(script)
        self._queue.append((sha, script, keys, args, future, time.monotonic()))
        if not self._scheduled and self._inflight < self.settings.max_connections:
            self._scheduled = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._scheduled = False
        deadline = time.monotonic() - self.settings.timeout
        while self._queue and self._inflight < self.settings.max_connections:
            batch = self._queue[: self.settings.max_batch]
            del self._queue[: self.settings.max_batch]
            fresh = [item for item in batch if item[5] >= deadline]
            for item in batch:
                if item[5] < deadline and not item[4].done():
                    item[4].set_exception(BackendUnavailable("timed out waiting for Redis"))
            if not fresh:
                continue
            self._inflight += 1
            task = asyncio.get_running_loop().create_task(self._send(fresh))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[Pending]) -> None:
        try:
            if self.client is None:
                raise RedisError("the link is closed")
            async with asyncio.timeout(self.settings.timeout):
                if isinstance(self.client, RedisCluster):
                    results = await self._execute_cluster(batch)
                else:
                    results = await self._execute_direct(self.client, batch)
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed(exc)
            error = BackendUnavailable(f"Redis {self.name}: {type(exc).__name__}: {exc}")
            for item in batch:
                if not item[4].done():
                    item[4].set_exception(error)
        else:
            self._succeeded()
            for item, result in zip(batch, results, strict=True):
                if item[4].done():
                    continue
                if isinstance(result, Exception):
                    item[4].set_exception(BackendUnavailable(f"Redis {self.name}: {result}"))
                else:
                    item[4].set_result(result)
        finally:
            self._inflight -= 1
            if self._queue and not self._scheduled:
                self._scheduled = True
                asyncio.get_running_loop().call_soon(self._flush)

    async def _execute_direct(self, client: Redis, batch: Sequence[Pending]) -> list[Any]:
        """One write and one read pass on one pooled connection (scripts loaded on NOSCRIPT)."""
        pool = client.connection_pool
        connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        clean = False
        try:
            results = await _round_trip(connection, [_evalsha(item) for item in batch])
            missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
            if missing:
                texts = list(dict.fromkeys(batch[i][1] for i in missing))
                await _round_trip(connection, [("SCRIPT", "LOAD", text) for text in texts])
                again = await _round_trip(connection, [_evalsha(batch[i]) for i in missing])
                for i, result in zip(missing, again, strict=True):
                    results[i] = result
            clean = True
            return results
        finally:
            if not clean:  # cancelled or failed mid-reply: its stream is out of step
                await connection.disconnect(nowait=True)
            await pool.release(connection)

    async def _execute_cluster(self, batch: Sequence[Pending]) -> list[Any]:
        """redis-py's cluster pipeline routes each script to its key's slot owner."""
        assert isinstance(self.client, RedisCluster)
        results = await self._cluster_pipeline(batch)
        missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
        if missing:
            for text in dict.fromkeys(batch[i][1] for i in missing):
                await self.client.script_load(text)  # on every primary
            again = await self._cluster_pipeline([batch[i] for i in missing])
            for i, result in zip(missing, again, strict=True):
                results[i] = result
        return results

    async def _cluster_pipeline(self, batch: Sequence[Pending]) -> list[Any]:
        assert self.client is not None
        pipe = self.client.pipeline(transaction=False)
        for item in batch:
            pipe.execute_command(*_evalsha(item))
        return list(await pipe.execute(raise_on_error=False))

    def _failed(self, exc: BaseException) -> None:
        self.failures += 1
        was_up = time.monotonic() >= self.down_until
        self.down_until = time.monotonic() + self.settings.retry_interval
        if was_up:
            log.warning(
                "rate-limit: Redis %s failed (%s: %s); on_error policy applies, retrying in %.1fs",
                self.name,
                type(exc).__name__,
                exc or "timed out",
                self.settings.retry_interval,
            )
            if isinstance(self.client, Redis):
                task = asyncio.get_running_loop().create_task(self._reset_connections())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        for callback in self.on_failure:
            callback()

    async def _reset_connections(self) -> None:
        """Drop pooled connections so the next attempt dials afresh (Redis may have restarted)."""
        if isinstance(self.client, Redis):
            with contextlib.suppress(RedisError, OSError):
                await self.client.connection_pool.disconnect(inuse_connections=False)

    def _succeeded(self) -> None:
        if self.down_until:
            self.down_until = 0.0
            log.warning("rate-limit: Redis %s answers again; limits enforced", self.name)
