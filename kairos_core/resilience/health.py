"""Active health checks: jittered periodic probes of each backend of a pool."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import TYPE_CHECKING

import aiohttp

from kairos_core.config.resilience import ActiveHealthCheck, parse_statuses
from kairos_core.tls import upstream_context

if TYPE_CHECKING:
    from kairos_core.upstream.pool import Backend, UpstreamPool

log = logging.getLogger("kairos.health")


class ActiveHealthChecker:
    """Probes every backend of one pool and flips its health after the configured thresholds."""

    def __init__(self, pool: UpstreamPool, config: ActiveHealthCheck) -> None:
        self.pool = pool
        self.config = config
        self.expected = parse_statuses(config.expected_statuses)
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self.probes = 0

    async def start(self) -> None:
        """Start one probe loop per backend."""
        needs_tls = any(b.scheme == "https" for b in self.pool.backends)
        ssl_context = upstream_context(self.pool.config.tls) if needs_tls else None
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=ssl_context if ssl_context else True, limit=0),
            timeout=aiohttp.ClientTimeout(total=self.config.timeout),
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        for backend in self.pool.backends:
            self._tasks.append(
                asyncio.create_task(
                    self._loop(backend), name=f"health:{self.pool.name}/{backend.name}"
                )
            )

    async def stop(self) -> None:
        """Stop probing and close the probe connections."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _delay(self) -> float:
        spread = self.config.interval * self.config.jitter
        return max(0.01, self.config.interval + random.uniform(-spread, spread))

    async def _loop(self, backend: Backend) -> None:
        successes = failures = 0
        await asyncio.sleep(random.uniform(0, self.config.interval * self.config.jitter))
        while True:
            ok, detail = await self.probe(backend)
            self.probes += 1
            if ok:
                successes, failures = successes + 1, 0
                if not backend.healthy and successes >= self.config.healthy_threshold:
                    backend.set_healthy(True)
            else:
                successes, failures = 0, failures + 1
                if backend.healthy and failures >= self.config.unhealthy_threshold:
                    log.warning(
                        "health check of %s/%s failed %d times: %s",
                        self.pool.name,
                        backend.name,
                        failures,
                        detail,
                    )
                    backend.set_healthy(False)
            await asyncio.sleep(self._delay())

    async def probe(self, backend: Backend) -> tuple[bool, str]:
        """One probe: (healthy?, what happened); a protocol plugin's probe when it set one."""
        custom = self.pool.health_probe
        if custom is not None:
            try:
                async with asyncio.timeout(self.config.timeout):
                    return await custom(backend)
            except TimeoutError:
                return False, f"no answer within {self.config.timeout:g}s"
            except OSError as exc:
                return False, str(exc) or type(exc).__name__
        assert self._session is not None
        headers = dict(self.config.headers)
        headers.setdefault("Host", self.config.host_header or backend.host_header)
        headers.setdefault("User-Agent", "kairos-health-check")
        try:
            async with self._session.request(
                self.config.method,
                backend.url + self.config.path,
                headers=headers,
                allow_redirects=False,
                server_hostname=self.pool.config.tls.server_name,
            ) as response:
                await response.read()
                if response.status in self.expected:
                    return True, f"status {response.status}"
                return False, f"status {response.status}"
        except TimeoutError:
            return False, f"no answer within {self.config.timeout:g}s"
        except (aiohttp.ClientError, OSError) as exc:
            return False, str(exc) or type(exc).__name__
