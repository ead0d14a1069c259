"""Recent decisions, keyed by request features, reused for `ttl` seconds (least recent evicted)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable


class DecisionCache:
    """A bounded TTL map from a request-feature key to the backend name the model chose."""

    __slots__ = ("_clock", "_entries", "max_entries", "ttl")

    def __init__(
        self, ttl: float, max_entries: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[str, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        """False when `ttl` is 0."""
        return self.ttl > 0

    def get(self, key: Hashable) -> str | None:
        """The cached backend name, if fresh."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[1] <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, key: Hashable, backend: str) -> None:
        """Remember a decision."""
        if not self.enabled:
            return
        entries = self._entries
        entries[key] = (backend, self._clock() + self.ttl)
        entries.move_to_end(key)
        while len(entries) > self.max_entries:
            entries.popitem(last=False)

    def forget(self, key: Hashable) -> None:
        """Drop one decision (its backend went away)."""
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)
