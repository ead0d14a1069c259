"""Counters in a shared memory table, so `kairos serve --workers N` enforces one limit, not N.

Every worker maps the same file in /dev/shm, named from the gateway's instance id and the
limit. The table is split into stripes; a check locks its stripe with a one-byte POSIX
record lock (`lockf`), probes a few slots for the key's digest, steps the algorithm over the
slot's numbers and unlocks. A zeroed slot is an empty one, so the file needs no set-up.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import mmap
import os
import re
import struct
import tempfile
from pathlib import Path

HEADER = 4096
"""Bytes before the first slot: magic, then the pid of each worker's process (int64 each)."""
MAGIC = b"KRLSHM01"
MAX_WORKERS = 256
PROBE = 8
STRIPES = 64
_HEADER_LOCK = 1 << 30
"""Lock offset that guards the header (past every stripe's lock byte)."""
FOREVER = 1 << 62
"""Expiry of a slot that must not be reused (a concurrency slot in use)."""
EXPIRES = struct.Struct("=q")
"""Each slot: 16-byte key digest, then this (when the state is fresh again), then the state."""
_NAME_RE = re.compile(r"^kairos-rl-(\d+)-")


def shm_dir() -> Path:
    """Where segments live: /dev/shm when there is one (memory), else the temp directory."""
    path = Path("/dev/shm")
    return path if path.is_dir() else Path(tempfile.gettempdir())


def segment_name(instance_id: str, identity: str) -> str:
    """The file name of one limit's table in one running gateway."""
    digest = hashlib.sha1(identity.encode(), usedforsecurity=False).hexdigest()[:20]
    safe = re.sub(r"[^A-Za-z0-9-]", "_", instance_id)
    return f"kairos-rl-{safe}-{digest}"


def sweep_stale(directory: Path | None = None) -> int:
    """Remove segments of gateways whose process is gone (killed before they could)."""
    removed = 0
    for path in (directory or shm_dir()).glob("kairos-rl-*"):
        found = _NAME_RE.match(path.name)
        if not found or _alive(int(found.group(1))):
            continue
        with contextlib.suppress(OSError):
            fd = os.open(path, os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                path.unlink()
                removed += 1
            finally:
                os.close(fd)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SharedTable:
    """A fixed-size hash table of byte slots in a shared file, locked by stripe."""

    def __init__(self, path: Path, capacity: int, payload: int, cleared: int | None = None) -> None:
        self.path = path
        self.stripes = min(STRIPES, max(1, capacity // PROBE))
        self.per_stripe = max(PROBE, -(-capacity // self.stripes))
        self.capacity = self.stripes * self.per_stripe
        self.slot_size = (24 + payload + 7) // 8 * 8
        self.cleared = self.slot_size if cleared is None else 24 + cleared
        """Bytes zeroed when a slot changes hands (a log's old timestamps need no clearing)."""
        self._zeros = bytes(self.cleared)
        self.size = HEADER + self.capacity * self.slot_size
        self.evictions = 0
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_SH)  # "attached": the last one to leave removes the file
        if os.fstat(self.fd).st_size < self.size:
            os.ftruncate(self.fd, self.size)  # zero-filled and sparse: every slot starts empty
        self.map = mmap.mmap(self.fd, self.size)
        self.lock(_HEADER_LOCK)
        try:
            if self.map[:8] != MAGIC:
                self.map[:8] = MAGIC
        finally:
            self.unlock(_HEADER_LOCK)

    def lock(self, stripe: int) -> None:
        """Take a stripe's lock (blocks while another process holds it)."""
        fcntl.lockf(self.fd, fcntl.LOCK_EX, 1, stripe)

    def unlock(self, stripe: int) -> None:
        """Release a stripe's lock."""
        fcntl.lockf(self.fd, fcntl.LOCK_UN, 1, stripe)

    def find(self, digest: bytes, now: int) -> int:
        """The offset of `digest`'s slot, claiming a free or the stalest one; caller holds the lock."""
        mm = self.map
        h = int.from_bytes(digest[:8], "little")
        base = HEADER + (h % self.stripes) * self.per_stripe * self.slot_size
        start = (h // self.stripes) % self.per_stripe
        free = -1
        stalest, stalest_expiry = -1, FOREVER + 1
        for step in range(PROBE):
            offset = base + ((start + step) % self.per_stripe) * self.slot_size
            if mm[offset : offset + 16] == digest:
                return offset
            expires = EXPIRES.unpack_from(mm, offset + 16)[0]
            if expires <= now and free < 0:
                free = offset
            elif expires < stalest_expiry:
                stalest, stalest_expiry = offset, expires
        if free < 0:
            free = stalest
            self.evictions += 1
        mm[free : free + self.cleared] = self._zeros
        mm[free : free + 16] = digest
        return free

    def claim_worker(self, worker_id: int) -> bool:
        """Record this process as worker `worker_id`; True when it replaces another process."""
        offset = 8 + 8 * (worker_id % MAX_WORKERS)
        self.lock(_HEADER_LOCK)
        try:
            previous = EXPIRES.unpack_from(self.map, offset)[0]
            EXPIRES.pack_into(self.map, offset, os.getpid())
        finally:
            self.unlock(_HEADER_LOCK)
        return bool(previous != os.getpid())

    def slot_offsets(self, stripe: int) -> range:
        """Offsets of the slots of one stripe."""
        base = HEADER + stripe * self.per_stripe * self.slot_size
        return range(base, base + self.per_stripe * self.slot_size, self.slot_size)

    def stripe_of(self, digest: bytes) -> int:
        """The lock byte guarding `digest`'s slots."""
        return int.from_bytes(digest[:8], "little") % self.stripes

    def close(self) -> None:
        """Unmap; remove the file when no other process (or runtime) has it attached."""
        self.map.close()
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        os.close(self.fd)


_last_digest: tuple[str, bytes] = ("", b"")


def key_digest(key: str) -> bytes:
    """16 bytes that identify a key in a slot (several limits on one key hash it once)."""
    global _last_digest
    last_key, digest = _last_digest
    if key == last_key:
        return digest
    digest = hashlib.blake2b(key.encode(), digest_size=16).digest()
    _last_digest = (key, digest)
    return digest
