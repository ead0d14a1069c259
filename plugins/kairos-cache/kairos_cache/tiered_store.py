"""Redis with a small per-worker memory tier in front: hot entries are read without a round trip."""

from __future__ import annotations

from collections.abc import Sequence

from kairos_cache.keys import PurgeFilter
from kairos_cache.redis_store import RedisStore
from kairos_cache.stores import Item, MemoryStore


class TieredStore:
    """Reads the local tier first, then Redis; every entry read or written is kept locally for
    at most `local_ttl` seconds, which bounds how long another gateway's update or purge takes
    to be seen here. Freshness is still checked on every use."""

    kind = "redis"

    def __init__(self, local: MemoryStore, remote: RedisStore, local_ttl: float) -> None:
        self.local = local
        self.remote = remote
        self._local_ttl = local_ttl

    async def get(self, key: str) -> Item | None:
        """The local copy, else Redis's (then kept locally)."""
        found = self.local.peek(key)
        if found is not None:
            return found
        found = await self.remote.get(key)
        if found is not None:
            self.local.set(key, found, self._local_ttl)
        return found

    async def put(self, items: Sequence[tuple[str, Item, float]]) -> int:
        """Write to Redis, then keep local copies."""
        written = await self.remote.put(items)
        for key, item, ttl in items:
            self.local.set(key, item, min(ttl, self._local_ttl))
        return written

    async def delete(self, key: str) -> None:
        """Forget `key` here and in Redis."""
        await self.local.delete(key)
        await self.remote.delete(key)

    async def purge(self, selector: PurgeFilter) -> int:
        """Purge both tiers; the count is Redis's."""
        await self.local.purge(selector)
        return await self.remote.purge(selector)

    async def close(self) -> None:
        """Drop the local tier and release the Redis client."""
        await self.local.close()
        await self.remote.close()
