"""All keys one authenticator trusts: static keys plus the current contents of its JWKS sources."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Protocol

from kairos_jwt import errors
from kairos_jwt.errors import KeysUnavailable, TokenRejected, UnknownKeyId
from kairos_jwt.keys import PinnedKey


class KeySet:
    """Keys indexed by kid; keys without a kid match any token kid that no other key claims."""

    __slots__ = ("by_kid", "keys", "without_kid")

    def __init__(self, keys: Iterable[PinnedKey]) -> None:
        self.keys = tuple(keys)
        by_kid: dict[str, list[PinnedKey]] = {}
        for key in self.keys:
            if key.kid is not None:
                by_kid.setdefault(key.kid, []).append(key)
        self.by_kid = {kid: tuple(found) for kid, found in by_kid.items()}
        self.without_kid = tuple(k for k in self.keys if k.kid is None)

    def __len__(self) -> int:
        return len(self.keys)


EMPTY = KeySet(())


class RemoteKeys(Protocol):
    """A source of keys that can change at run time (a JWKS URL)."""

    @property
    def current(self) -> KeySet:
        """The keys as last fetched."""
        ...

    @property
    def version(self) -> int:
        """Bumped whenever `current` changes."""
        ...

    @property
    def loaded(self) -> bool:
        """True once a fetch succeeded."""
        ...

    async def refetch_for_unknown_kid(self) -> bool:
        """Fetch again unless rate-limited; True when the key set changed."""
        ...

    async def start(self) -> None:
        """Fetch the keys and begin refreshing them."""
        ...

    async def close(self) -> None:
        """Stop refreshing."""
        ...


class KeyRing:
    """Looks up candidate keys for a token's kid and alg across static and remote keys."""

    def __init__(self, static: Iterable[PinnedKey], remote: Sequence[RemoteKeys] = ()) -> None:
        self.static = KeySet(static)
        self.remote = tuple(remote)

    @property
    def version(self) -> int:
        """Changes whenever a remote key set changes (cached verifications are then dropped)."""
        remote = self.remote
        if not remote:
            return 0
        if len(remote) == 1:
            return remote[0].version
        return sum(r.version for r in remote)

    def _sets(self) -> list[KeySet]:
        return [self.static, *(r.current for r in self.remote)]

    def candidates(self, kid: str | None, alg: str) -> Sequence[PinnedKey]:
        """Keys that may verify a token with this kid and alg; raise if there are none."""
        sets = self._sets()
        if kid is not None:
            found = [key for s in sets for key in s.by_kid.get(kid, ())]
            if not found:
                found = [key for s in sets for key in s.without_kid]
            if not found:
                if not self.static and not any(r.loaded for r in self.remote):
                    raise _unavailable()
                raise UnknownKeyId()
        else:
            found = [key for s in sets for key in s.keys]
            if not found:
                raise _unavailable()
        usable = [key for key in found if alg in key.algorithms]
        if not usable:
            raise TokenRejected(
                errors.ALG_KEY_MISMATCH, f"algorithm {alg} is not allowed for the signing key"
            )
        return usable

    async def refetch_for_unknown_kid(self) -> bool:
        """Ask every remote source to refetch (each rate-limits itself); True if any changed."""
        if not self.remote:
            return False
        results = await asyncio.gather(*(r.refetch_for_unknown_kid() for r in self.remote))
        return any(results)

    async def start(self) -> None:
        """Start every remote source."""
        for source in self.remote:
            await source.start()

    async def close(self) -> None:
        """Stop every remote source."""
        for source in self.remote:
            await source.close()


def _unavailable() -> TokenRejected:
    return KeysUnavailable()
