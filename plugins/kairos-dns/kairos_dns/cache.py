"""The answer cache: positive answers by TTL, negative ones per RFC 2308, TTLs counting down."""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Callable

from kairos_dns.config import CacheSettings
from kairos_dns.wire import NOERROR, NXDOMAIN, Layout, Query, without_cookie

_TTL = struct.Struct("!I")


class CacheEntry:
    """One stored answer: a wire template whose TTLs are rewritten as time passes."""

    __slots__ = (
        "_rendered",
        "_rendered_age",
        "expires",
        "stored_at",
        "ttl_offsets",
        "ttls",
        "wire",
    )

    def __init__(
        self, wire: bytes, ttl_offsets: list[int], ttls: list[int], stored_at: float, life: int
    ) -> None:
        self.wire = wire
        self.ttl_offsets = ttl_offsets
        self.ttls = ttls
        self.stored_at = stored_at
        self.expires = stored_at + life
        self._rendered = wire
        self._rendered_age = 0

    def render(self, now: float) -> bytes:
        """The answer as of `now`: every TTL reduced by the whole seconds it has been stored."""
        age = int(now - self.stored_at)
        if age == self._rendered_age:
            return self._rendered
        out = bytearray(self.wire)
        for offset, ttl in zip(self.ttl_offsets, self.ttls, strict=True):
            _TTL.pack_into(out, offset, max(0, ttl - age))
        self._rendered = bytes(out)
        self._rendered_age = age
        return self._rendered


class DnsCache:
    """Answers keyed by question (name case-folded, type, class, EDNS/DO/CD), bounded in size."""

    def __init__(self, settings: CacheSettings, clock: Callable[[], float]) -> None:
        self.settings = settings
        self.clock = clock
        self.entries: OrderedDict[bytes, CacheEntry] = OrderedDict()
        self.bytes = 0
        self._max_entries = settings.max_entries
        self._max_bytes = int(settings.max_bytes)

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, query: Query) -> bytes | None:
        """The cached answer to `query` with its ID, letter case and RD/CD bits; None on a miss."""
        entry = self.entries.get(query.key)
        if entry is None:
            return None
        now = self.clock()
        if now >= entry.expires:
            self._drop(query.key)
            return None
        self.entries.move_to_end(query.key)
        wire = entry.render(now)
        flags_high = (wire[2] & 0xFA) | ((query.flags >> 8) & 0x01)  # AA off, RD as asked
        flags_low = (wire[3] & 0xEF) | (query.flags & 0x10)  # CD as asked
        qname = query.qname
        return (
            query.id_bytes
            + bytes((flags_high, flags_low))
            + wire[4:12]
            + qname
            + wire[12 + len(qname) :]
        )

    def store(self, query: Query, answer: bytes, layout: Layout) -> CacheEntry | None:
        """Keep `answer` if it may be cached (TTLs capped, client-specific bits removed)."""
        settings = self.settings
        if layout.truncated or layout.rcode not in (NOERROR, NXDOMAIN):
            return None
        template = bytearray(without_cookie(answer, layout))
        template[0:2] = b"\x00\x00"
        low, high = settings.min_ttl, settings.max_ttl
        ttls = [min(max(ttl, low), high) for ttl in layout.ttls]
        negative = layout.rcode == NXDOMAIN or layout.answers == 0
        if negative:
            if layout.soa_ttl_offset is None or layout.negative_ttl is None:
                return None  # RFC 2308 section 5: no SOA, no negative caching
            index = layout.ttl_offsets.index(layout.soa_ttl_offset)
            ttls[index] = min(max(layout.negative_ttl, low), settings.max_negative_ttl)
        elif not ttls:
            return None
        life = min(ttls)
        if life <= 0:
            return None
        wire = with_ttls(template, layout.ttl_offsets, ttls)
        if len(wire) > self._max_bytes:
            return None
        self._drop(query.key)
        entry = CacheEntry(wire, layout.ttl_offsets, ttls, self.clock(), life)
        self.entries[query.key] = entry
        self.bytes += len(wire)
        while len(self.entries) > self._max_entries or self.bytes > self._max_bytes:
            _key, evicted = self.entries.popitem(last=False)
            self.bytes -= len(evicted.wire)
        return entry

    def _drop(self, key: bytes) -> None:
        entry = self.entries.pop(key, None)
        if entry is not None:
            self.bytes -= len(entry.wire)

    def purge(self, name: bytes | None = None, zone: bool = False, qtype: int | None = None) -> int:
        """Remove every entry, those for one lower-cased wire `name`, or (zone) at or below it."""
        if name is None:
            removed = len(self.entries)
            self.entries.clear()
            self.bytes = 0
            return removed
        doomed = [key for key in self.entries if _matches(key, name, zone, qtype)]
        for key in doomed:
            self._drop(key)
        return len(doomed)

    def adopt(self, old: DnsCache) -> None:
        """Take over the entries of the cache this one replaces (configuration reload)."""
        for key, entry in old.entries.items():
            self.entries[key] = entry
            self.bytes += len(entry.wire)
        while len(self.entries) > self._max_entries or self.bytes > self._max_bytes:
            _key, evicted = self.entries.popitem(last=False)
            self.bytes -= len(evicted.wire)


def with_ttls(wire: bytes | bytearray, offsets: list[int], ttls: list[int]) -> bytes:
    """`wire` with the TTL at each offset replaced."""
    out = bytearray(wire)
    for offset, ttl in zip(offsets, ttls, strict=True):
        _TTL.pack_into(out, offset, ttl)
    return bytes(out)


def _matches(key: bytes, name: bytes, zone: bool, qtype: int | None) -> bool:
    owner = key[:-5]
    if qtype is not None and int.from_bytes(key[-5:-3], "big") != qtype:
        return False
    if not zone:
        return owner == name
    pos = 0
    while pos < len(owner):  # compare on label boundaries only
        if owner[pos:] == name:
            return True
        pos += owner[pos] + 1
    return name == b"\x00"
