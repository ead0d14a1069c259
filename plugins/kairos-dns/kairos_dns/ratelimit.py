"""Per-client-address token buckets: the gateway must not become a reflection amplifier."""

from __future__ import annotations

from collections.abc import Callable

from kairos_dns.config import RateLimitSettings

ALLOW, DROP, SLIP = 0, 1, 2


class ClientRateLimiter:
    """Allows `per_second` queries per address with bursts of `burst`; answers ALLOW/DROP/SLIP."""

    def __init__(self, settings: RateLimitSettings, clock: Callable[[], float]) -> None:
        self.settings = settings
        self.rate = settings.per_second
        self.burst = settings.bucket
        self.slip = settings.slip
        self.max_clients = settings.max_clients
        self.clock = clock
        self.buckets: dict[str, list[float]] = {}  # address -> [tokens, last refill]
        self.limited = 0
        self._refill_time = self.burst / self.rate
        self._last_sweep = float("-inf")

    def check(self, address: str) -> int:
        """ALLOW this query, DROP it, or SLIP (answer it truncated so the client uses TCP)."""
        now = self.clock()
        bucket = self.buckets.get(address)
        if bucket is None:
            if len(self.buckets) >= self.max_clients:
                self._make_room(now)
            self.buckets[address] = [self.burst - 1.0, now]
            return ALLOW
        tokens = bucket[0] + (now - bucket[1]) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return ALLOW
        bucket[0] = tokens
        self.limited += 1
        if self.slip and self.limited % self.slip == 0:
            return SLIP
        return DROP

    def _make_room(self, now: float) -> None:
        """Forget buckets that have refilled (same as absent); else the oldest one."""
        if now - self._last_sweep >= 1.0:
            self._last_sweep = now
            idle = now - self._refill_time
            for address in [a for a, b in self.buckets.items() if b[1] <= idle]:
                del self.buckets[address]
        if len(self.buckets) >= self.max_clients:
            del self.buckets[next(iter(self.buckets))]
