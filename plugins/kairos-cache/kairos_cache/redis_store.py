"""The Redis store: entries shared by every worker and machine, bypassed while Redis is down."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from kairos_cache.codec import CorruptEntry, decode, encode
from kairos_cache.keys import PurgeFilter
from kairos_cache.stores import Item, StoreUnavailable
from kairos_core import redact_url

log = logging.getLogger("kairos.cache")

_GLOB_SPECIAL = str.maketrans({c: f"\\{c}" for c in "*?[]\\"})
_BATCH = 500


class RedisClients:
    """One Redis client per URL for a configuration, shared by every cache instance using it."""

    def __init__(self) -> None:
        self._clients: dict[str, tuple[Redis, int]] = {}

    def acquire(self, url: str, timeout: float) -> Redis:
        """The shared client for `url` (created without connecting)."""
        found = self._clients.get(url)
        if found is None:
            client = Redis.from_url(
                url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 0),
                max_connections=256,
            )
            found = (client, 0)
        self._clients[url] = (found[0], found[1] + 1)
        return found[0]

    async def release(self, url: str) -> None:
        """Drop one user of `url`; the last one closes the client."""
        client, users = self._clients[url]
        if users > 1:
            self._clients[url] = (client, users - 1)
            return
        del self._clients[url]
        await client.aclose()


class RedisStore:
    """Entries in Redis under `namespace`, zlib-compressed when asked; fails fast while down."""

    kind = "redis"

    def __init__(
        self,
        clients: RedisClients,
        url: str,
        namespace: str,
        *,
        timeout: float,
        retry_after: float,
        compress_min: int | None,
        compress_level: int,
    ) -> None:
        self.url = url
        self.shown_url = redact_url(url)
        """The URL with its password masked, for logs and errors."""
        self.namespace = namespace
        self._clients = clients
        self._redis = clients.acquire(url, timeout)
        self._retry_after = retry_after
        self._compress_min = compress_min
        self._compress_level = compress_level
        self._down_until = 0.0

    @property
    def identity(self) -> tuple[str, str]:
        """What makes two stores the same data: the server and the namespace."""
        return (self.url, self.namespace)

    def _check(self) -> None:
        if self._down_until and time.monotonic() < self._down_until:
            raise StoreUnavailable(f"Redis at {self.shown_url} is down")

    def _failed(self, exc: BaseException) -> StoreUnavailable:
        if not self._down_until:
            log.warning(
                "cache: Redis at %s unavailable (%s); bypassing the cache", self.shown_url, exc
            )
        self._down_until = time.monotonic() + self._retry_after
        return StoreUnavailable(f"Redis at {self.shown_url}: {exc}")

    def _recovered(self) -> None:
        if self._down_until:
            log.warning("cache: Redis at %s is back", self.shown_url)
            self._down_until = 0.0

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        self._check()
        try:
            result = await getattr(self._redis, method)(*args, **kwargs)
        except (RedisError, OSError, TimeoutError) as exc:
            raise self._failed(exc) from exc
        self._recovered()
        return result

    async def get(self, key: str) -> Item | None:
        """The entry at `key`, or None (unreadable data counts as absent)."""
        data = await self._call("get", self.namespace + key)
        if data is None:
            return None
        try:
            return decode(data)
        except CorruptEntry as exc:
            log.warning("cache: ignoring entry %r: %s", key, exc)
            return None

    async def put(self, items: Sequence[tuple[str, Item, float]]) -> int:
        """Write the items in one round trip."""
        self._check()
        written = 0
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key, item, ttl in items:
                    data = encode(item, self._compress_min, self._compress_level)
                    written += len(data)
                    pipe.set(self.namespace + key, data, px=max(1, int(ttl * 1000)))
                await pipe.execute()
        except (RedisError, OSError, TimeoutError) as exc:
            raise self._failed(exc) from exc
        self._recovered()
        return written

    async def delete(self, key: str) -> None:
        """Forget `key`."""
        await self._call("unlink", self.namespace + key)

    async def purge(self, selector: PurgeFilter) -> int:
        """SCAN for candidate keys, check each against `selector`, UNLINK in batches."""
        pattern = (self.namespace + selector.key_prefix()).translate(_GLOB_SPECIAL) + "*"
        skip = len(self.namespace)
        removed = 0
        doomed: list[bytes] = []
        cursor: int = 0
        while True:
            cursor, keys = await self._call("scan", cursor, match=pattern, count=_BATCH)
            for raw in keys:
                if selector.matches(raw[skip:].decode("utf-8", "replace")):
                    doomed.append(raw)
            if len(doomed) >= _BATCH or (cursor == 0 and doomed):
                removed += await self._call("unlink", *doomed)
                doomed = []
            if cursor == 0:
                return removed

    async def close(self) -> None:
        """Release this store's hold on the shared client."""
        await self._clients.release(self.url)
