"""Where entries live: the store interface and the in-process LRU bounded by bytes."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Protocol

from kairos_cache.entry import CachedResponse, VaryMarker
from kairos_cache.keys import PurgeFilter

Item = CachedResponse | VaryMarker
MARKER_SIZE = 128


class StoreUnavailable(Exception):
    """The store cannot be reached now; the cache steps aside (X-Cache: BYPASS)."""


class CacheStore(Protocol):
    """A key-value store of cache entries with per-entry expiry."""

    kind: str

    async def get(self, key: str) -> Item | None:
        """The live entry at `key`, or None; raise StoreUnavailable when unreachable."""
        ...

    async def put(self, items: Sequence[tuple[str, Item, float]]) -> int:
        """Store each `(key, item, ttl seconds)`; return the bytes written (0 if none kept)."""
        ...

    async def delete(self, key: str) -> None:
        """Forget `key` (the variants of a primary key become unreachable with it)."""
        ...

    async def purge(self, selector: PurgeFilter) -> int:
        """Remove every entry `selector` matches; return how many were removed."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


def item_size(item: Item) -> int:
    """Bytes an item is charged against the memory bound."""
    return item.size if isinstance(item, CachedResponse) else MARKER_SIZE


class MemoryStore:
    """An LRU of entries in this process, evicting least recently used ones beyond `max_bytes`."""

    kind = "memory"

    def __init__(self, max_bytes: int, clock: Callable[[], float]) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._clock = clock
        self._items: OrderedDict[str, tuple[Item, int, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def peek(self, key: str) -> Item | None:
        """Synchronous lookup: the live entry at `key`, marked most recently used."""
        found = self._items.get(key)
        if found is None:
            return None
        if found[2] <= self._clock():
            self._drop(key)
            return None
        self._items.move_to_end(key)
        return found[0]

    async def get(self, key: str) -> Item | None:
        """The live entry at `key`, or None."""
        return self.peek(key)

    async def put(self, items: Sequence[tuple[str, Item, float]]) -> int:
        """Store the items, evicting the least recently used entries to stay within the bound."""
        return sum(self.set(key, item, ttl) for key, item, ttl in items)

    def set(self, key: str, item: Item, ttl: float) -> int:
        """Store one item; return its charged size (0 when it cannot fit)."""
        size = item_size(item) + len(key)
        if size > self.max_bytes or ttl <= 0:
            self._drop(key)
            return 0
        self._drop(key)
        self._items[key] = (item, size, self._clock() + ttl)
        self.bytes += size
        while self.bytes > self.max_bytes:
            oldest = next(iter(self._items))
            self._drop(oldest)
        return size

    async def delete(self, key: str) -> None:
        """Forget `key`."""
        self._drop(key)

    async def purge(self, selector: PurgeFilter) -> int:
        """Remove the matching entries."""
        start = selector.key_prefix()
        doomed = [k for k in self._items if k.startswith(start) and selector.matches(k)]
        for key in doomed:
            self._drop(key)
        return len(doomed)

    async def close(self) -> None:
        """Drop everything."""
        self._items.clear()
        self.bytes = 0

    def _drop(self, key: str) -> None:
        found = self._items.pop(key, None)
        if found is not None:
            self.bytes -= found[1]
