"""CIDR allow/deny lists folded into sorted disjoint ranges: one bisect per lookup."""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Iterable
from typing import Literal

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Verdict = Literal["allow", "deny"]


def parse_network(value: str) -> Network:
    """Parse `10.0.0.0/8`, `2001:db8::/32` or a bare address; host bits set is an error."""
    text = value.strip()
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or CIDR range: {exc}") from None
        raise ValueError(
            f"{value!r} has host bits set; did you mean {loose.with_prefixlen!r}?"
        ) from None


class RangeMap:
    """Disjoint integer ranges of one IP version, each carrying the verdict of its most specific network."""

    __slots__ = ("_ends", "_starts", "_verdicts")

    def __init__(self, networks: Iterable[tuple[Network, Verdict]]) -> None:
        # CIDR blocks are either nested or disjoint, so a stack sweep in (start, size desc)
        # order paints each address with its most specific block.
        ordered = sorted(
            (
                (int(n.network_address), int(n.broadcast_address), n.prefixlen, v)
                for n, v in networks
            ),
            key=lambda item: (item[0], item[2]),
        )
        starts: list[int] = []
        ends: list[int] = []
        verdicts: list[Verdict] = []

        def emit(first: int, last: int, verdict: Verdict) -> None:
            if first > last:
                return
            if ends and ends[-1] + 1 == first and verdicts[-1] == verdict:
                ends[-1] = last
                return
            starts.append(first)
            ends.append(last)
            verdicts.append(verdict)

        stack: list[tuple[int, Verdict]] = []
        cursor = 0
        for start, end, _, verdict in ordered:
            while stack and stack[-1][0] < start:
                top_end, top_verdict = stack.pop()
                emit(cursor, top_end, top_verdict)
                cursor = top_end + 1
            if stack:
                emit(cursor, start - 1, stack[-1][1])
            cursor = start
            stack.append((end, verdict))
        while stack:
            top_end, top_verdict = stack.pop()
            emit(cursor, top_end, top_verdict)
            cursor = top_end + 1
        self._starts = starts
        self._ends = ends
        self._verdicts = verdicts

    def __len__(self) -> int:
        return len(self._starts)

    def lookup(self, address: int) -> Verdict | None:
        """The verdict of the most specific listed network containing `address`, if any."""
        index = bisect.bisect_right(self._starts, address) - 1
        if index >= 0 and address <= self._ends[index]:
            return self._verdicts[index]
        return None


class AddressFilter:
    """Decides whether a client address may pass: the most specific matching entry wins."""

    __slots__ = ("_cache", "_default", "_v4", "_v6")

    def __init__(self, allow: Iterable[Network], deny: Iterable[Network]) -> None:
        verdicts: dict[Network, Verdict] = {}
        allow = list(allow)
        for network in allow:
            verdicts[network] = "allow"
        for network in deny:
            verdicts[network] = "deny"  # the same block in both lists: deny wins
        self._v4 = RangeMap((n, v) for n, v in verdicts.items() if n.version == 4)
        self._v6 = RangeMap((n, v) for n, v in verdicts.items() if n.version == 6)
        self._default = not allow
        """Addresses no entry covers pass only when there is no allow list."""
        self._cache: dict[str, bool] = {}

    def admits(self, address: str) -> bool:
        """True when `address` may pass; unparsable addresses never do."""
        cached = self._cache.get(address)
        if cached is not None:
            return cached
        verdict = self._decide(address)
        if len(self._cache) >= 8192:
            self._cache.clear()
        self._cache[address] = verdict
        return verdict

    def _decide(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address):
            mapped = ip.ipv4_mapped
            if mapped is not None:
                ip = mapped
        ranges = self._v4 if ip.version == 4 else self._v6
        verdict = ranges.lookup(int(ip))
        if verdict is None:
            return self._default
        return verdict == "allow"
