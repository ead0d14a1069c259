"""The three kinds of counter over a shared memory table: windowed, log and in-flight."""

from __future__ import annotations

import struct
from pathlib import Path

from kairos_ratelimit.algorithms import Decision, windowed
from kairos_ratelimit.config import LimitSpec
from kairos_ratelimit.memory import Clock, monotonic_us
from kairos_ratelimit.shared_memory import EXPIRES, FOREVER, SharedTable, key_digest

_LOG_HEAD = struct.Struct("=ii")
_STAMP = struct.Struct("=q")


class _SharedCounter:
    """Lock the key's stripe, find its slot, run `step` on it, unlock."""

    table: SharedTable
    spec: LimitSpec

    @property
    def evictions(self) -> int:
        """Keys dropped because their probe window was full."""
        return self.table.evictions

    def close(self) -> None:
        """Detach from the table (the last process to leave removes it)."""
        self.table.close()


class SharedWindowed(_SharedCounter):
    """Token bucket, GCRA, fixed or sliding window counter in shared memory."""

    def __init__(
        self, spec: LimitSpec, path: Path, max_keys: int, clock: Clock = monotonic_us
    ) -> None:
        self.spec = spec
        self.algorithm = windowed(spec)
        self.fields = struct.Struct(f"={self.algorithm.fields}d")
        self.table = SharedTable(path, max_keys, self.fields.size)
        self.cost = spec.cost
        self.clock = clock

    def hit(self, key: str) -> Decision:
        digest = key_digest(key)
        table, fields, mm = self.table, self.fields, self.table.map
        stripe = table.stripe_of(digest)
        table.lock(stripe)
        try:
            now = self.clock()
            offset = table.find(digest, now)
            state = list(fields.unpack_from(mm, offset + 24))
            decision = self.algorithm.hit(state, now, self.cost)
            fields.pack_into(mm, offset + 24, *state)
            EXPIRES.pack_into(mm, offset + 16, self.algorithm.expires(state))
        finally:
            table.unlock(stripe)
        decision.undo = (digest, now)
        return decision

    def undo(self, decision: Decision) -> None:
        digest, now = decision.undo
        table, mm = self.table, self.table.map
        stripe = table.stripe_of(digest)
        table.lock(stripe)
        try:
            offset = table.find(digest, now)
            state = list(self.fields.unpack_from(mm, offset + 24))
            self.algorithm.undo(state, now, self.cost)
            self.fields.pack_into(mm, offset + 24, *state)
        finally:
            table.unlock(stripe)


class SharedLog(_SharedCounter):
    """The sliding window log as a ring of `limit` timestamps per slot."""

    def __init__(
        self, spec: LimitSpec, path: Path, max_keys: int, clock: Clock = monotonic_us
    ) -> None:
        self.spec = spec
        self.limit = spec.quota
        self.window = spec.window_us
        self.cost = spec.cost
        self.clock = clock
        self.table = SharedTable(path, max_keys, 8 + 8 * self.limit, cleared=8)

    def _stamp(self, offset: int, index: int) -> int:
        return int(_STAMP.unpack_from(self.table.map, offset + 32 + 8 * (index % self.limit))[0])

    def hit(self, key: str) -> Decision:
        digest = key_digest(key)
        table, mm, limit, window = self.table, self.table.map, self.limit, self.window
        stripe = table.stripe_of(digest)
        table.lock(stripe)
        try:
            now = self.clock()
            offset = table.find(digest, now)
            head, count = _LOG_HEAD.unpack_from(mm, offset + 24)
            horizon = now - window
            while count and self._stamp(offset, head) <= horizon:
                head, count = (head + 1) % limit, count - 1
            if count + self.cost > limit:
                _LOG_HEAD.pack_into(mm, offset + 24, head, count)
                retry = self._stamp(offset, head + count + self.cost - limit - 1) + window - now
                reset = self._stamp(offset, head + count - 1) + window - now
                return Decision(False, limit, limit - count, reset, retry)
            for index in range(head + count, head + count + self.cost):
                _STAMP.pack_into(mm, offset + 32 + 8 * (index % limit), now)
            count += self.cost
            _LOG_HEAD.pack_into(mm, offset + 24, head, count)
            EXPIRES.pack_into(mm, offset + 16, now + window)
        finally:
            table.unlock(stripe)
        return Decision(True, limit, limit - count, window, 0, (digest, now))

    def undo(self, decision: Decision) -> None:
        digest, now = decision.undo
        table, mm = self.table, self.table.map
        stripe = table.stripe_of(digest)
        table.lock(stripe)
        try:
            offset = table.find(digest, now)
            head, count = _LOG_HEAD.unpack_from(mm, offset + 24)
            for _ in range(self.cost):
                if count and self._stamp(offset, head + count - 1) == now:
                    count -= 1
            _LOG_HEAD.pack_into(mm, offset + 24, head, count)
        finally:
            table.unlock(stripe)


class SharedConcurrency(_SharedCounter):
    """Requests in flight, one column per worker so a restarted worker can drop its own."""

    def __init__(self, spec: LimitSpec, path: Path, max_keys: int, worker_id: int, workers: int):
        self.spec = spec
        self.limit = spec.quota
        self.cost = spec.cost
        self.worker = worker_id
        self.columns = struct.Struct(f"={workers}i")
        self.table = SharedTable(path, max_keys, self.columns.size)
        if self.table.claim_worker(worker_id):
            self._forget_own_slots()

    def _forget_own_slots(self) -> None:
        """A new process took over this worker id: what the old one held is no longer in flight."""
        table, mm, column = self.table, self.table.map, 24 + 4 * self.worker
        for stripe in range(table.stripes):
            table.lock(stripe)
            try:
                for offset in table.slot_offsets(stripe):
                    if EXPIRES.unpack_from(mm, offset + 16)[0]:
                        struct.pack_into("=i", mm, offset + column, 0)
                        if not any(self.columns.unpack_from(mm, offset + 24)):
                            EXPIRES.pack_into(mm, offset + 16, 0)
            finally:
                table.unlock(stripe)

    def hit(self, key: str) -> Decision:
        digest = key_digest(key)
        table, mm, limit = self.table, self.table.map, self.limit
        stripe = table.stripe_of(digest)
        table.lock(stripe)
        try:
            offset = table.find(digest, 0)
            columns = list(self.columns.unpack_from(mm, offset + 24))
            held = sum(columns)
            if held + self.cost > limit:
                return Decision(False, limit, limit - held, 0, 1_000_000)
            columns[self.worker] += self.cost
            self.columns.pack_into(mm, offset + 24, *columns)
            EXPIRES.pack_into(mm, offset + 16, FOREVER)
        finally:
            table.unlock(stripe)
        return Decision(True, limit, limit - held - self.cost, 0, 0, digest)

    def undo(self, decision: Decision) -> None:
        digest = decision.undo
        if not isinstance(digest, bytes):
            return
        decision.undo = None  # release once, however many paths try
        table, mm = self.table, self.table.map
        stripe = table.stripe_of(digest)
        table.lock(stripe)
        try:
            offset = table.find(digest, 0)
            columns = list(self.columns.unpack_from(mm, offset + 24))
            columns[self.worker] = max(0, columns[self.worker] - self.cost)
            self.columns.pack_into(mm, offset + 24, *columns)
            if not any(columns):
                EXPIRES.pack_into(mm, offset + 16, 0)
        finally:
            table.unlock(stripe)
