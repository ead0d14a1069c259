"""Consistent-hash tables over a candidate set: a ring with virtual nodes, and Maglev."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from hashlib import blake2b

from kairos_balancers.weighted import reduced_weights
from kairos_core import Backend


def stable_hash(text: str, size: int = 8) -> int:
    """A process-independent hash (BLAKE2b), for placing backends at build time."""
    return int.from_bytes(blake2b(text.encode(), digest_size=size).digest(), "big")


def identities(backends: Sequence[Backend]) -> dict[Backend, str]:
    """What each backend's place derives from: its name (host:port by default), made unique."""
    seen: dict[str, int] = {}
    out: dict[Backend, str] = {}
    for backend in backends:
        count = seen.get(backend.name, 0)
        seen[backend.name] = count + 1
        out[backend] = backend.name if count == 0 else f"{backend.name}@{count}"
    return out


class HashRing:
    """Each backend owns `virtual_nodes x weight` points on a 32-bit circle; a key goes to the
    first point at or after its hash. Removing a backend only moves the keys it owned."""

    __slots__ = ("_owners", "_points", "backends")

    def __init__(
        self,
        candidates: Sequence[Backend],
        names: Sequence[str],
        weights: Sequence[int],
        virtual_nodes: int,
        known_points: dict[tuple[str, int], list[int]] | None = None,
    ) -> None:
        self.backends = tuple(candidates)
        known = known_points if known_points is not None else {}
        placed: list[tuple[int, str, int]] = []
        for index, (identity, weight) in enumerate(zip(names, weights, strict=True)):
            count = virtual_nodes * weight
            points = known.get((identity, count))
            if points is None:
                points = [stable_hash(f"{identity}#{n}", 4) for n in range(count)]
                known[(identity, count)] = points
            placed.extend((point, identity, index) for point in points)
        placed.sort()
        self._points = [point for point, _, _ in placed]
        self._owners = tuple(candidates[index] for _, _, index in placed)

    def lookup(self, key_hash: int) -> Backend:
        """The backend owning `key_hash`."""
        index = bisect_right(self._points, key_hash)
        owners = self._owners
        return owners[index] if index < len(owners) else owners[0]

    def __len__(self) -> int:
        return len(self._points)


def is_prime(number: int) -> bool:
    """Trial division; table sizes are small."""
    if number < 2:
        return False
    divisor = 2
    while divisor * divisor <= number:
        if number % divisor == 0:
            return False
        divisor += 1
    return True


class MaglevTable:
    """Google's Maglev lookup table (NSDI 2016): O(1) lookups, even spread, and few keys
    moved when a backend leaves; weights set how many slots each backend fills per round."""

    __slots__ = ("_slots", "backends", "size")

    def __init__(
        self,
        candidates: Sequence[Backend],
        names: Sequence[str],
        weights: Sequence[int],
        size: int,
    ) -> None:
        self.backends = tuple(candidates)
        self.size = size
        count = len(candidates)
        skips = [stable_hash(f"{name}#skip") % (size - 1) + 1 for name in names]
        next_slot = [stable_hash(f"{name}#offset") % size for name in names]
        weights = reduced_weights(weights)
        heaviest = max(weights)
        credit = [0] * count
        table = [-1] * size
        filled = 0
        while filled < size:
            for index in range(count):
                credit[index] += weights[index]
                while credit[index] >= heaviest and filled < size:
                    credit[index] -= heaviest
                    # walk this backend's permutation (offset + j * skip) to its next free slot
                    slot, skip = next_slot[index], skips[index]
                    while table[slot] >= 0:
                        slot += skip
                        if slot >= size:
                            slot -= size
                    table[slot] = index
                    slot += skip
                    next_slot[index] = slot - size if slot >= size else slot
                    filled += 1
        self._slots = tuple(candidates[index] for index in table)

    def lookup(self, key_hash: int) -> Backend:
        """The backend in the key's slot."""
        return self._slots[key_hash % self.size]
