"""Rate-limit response headers: IETF draft (RateLimit-Policy, RateLimit), classic X-RateLimit-*."""

from __future__ import annotations

import math
from collections.abc import Sequence

from multidict import CIMultiDict, istr

from kairos_ratelimit.algorithms import Decision
from kairos_ratelimit.config import LimitSpec


def _sf_string(text: str) -> str:
    """A structured-field string (RFC 8941): quoted, with `"` and `\\` escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def policy_item(spec: LimitSpec) -> str:
    """One member of RateLimit-Policy: name, quota, window (seconds) when it has one."""
    item = f"{_sf_string(spec.display_name())};q={spec.capacity}"
    if spec.window:
        item += f";w={max(1, math.ceil(spec.window))}"
    return item


MEMO_SIZE = 1024
"""Most header sets `write_one` remembers (budgets repeat: the same few values most of the time)."""


class HeaderWriter:
    """Adds the configured headers for the limits a request was checked against."""

    def __init__(self, specs: Sequence[LimitSpec], style: str) -> None:
        self.ietf = style in ("ietf", "both")
        self.classic = style in ("classic", "both")
        self.prefixes = [f"{_sf_string(s.display_name())};r=" for s in specs]
        self.policy = ", ".join(policy_item(s) for s in specs)
        self._memo: dict[tuple[int, int, int], tuple[tuple[str, str], ...]] = {}

    def write_one(self, headers: CIMultiDict[str], decision: Decision) -> None:
        """`write` for the first limit alone; the header values are formatted once per budget."""
        key = (decision.limit, decision.remaining, -(-decision.reset_us // 1_000_000))
        memo = self._memo
        pairs = memo.get(key)
        if pairs is None:
            staged: CIMultiDict[str] = CIMultiDict()
            self.write(staged, [(0, decision)])
            pairs = tuple((istr(name), value) for name, value in staged.items())
            if len(memo) >= MEMO_SIZE:
                memo.clear()
            memo[key] = pairs
        for name, value in pairs:
            headers[name] = value

    def write(self, headers: CIMultiDict[str], checked: Sequence[tuple[int, Decision]]) -> None:
        """Describe `checked` (limit index, decision) pairs; the tightest one for classic headers."""
        if not checked:
            return
        if self.ietf:
            prefixes = self.prefixes
            headers["RateLimit-Policy"] = self.policy
            headers["RateLimit"] = ", ".join(
                f"{prefixes[i]}{max(0, d.remaining)};t={-(-d.reset_us // 1_000_000)}"
                for i, d in checked
            )
        if self.classic:
            tightest = checked[0][1]
            for _, decision in checked:
                if decision.remaining < tightest.remaining or (
                    decision.remaining == tightest.remaining
                    and decision.reset_us > tightest.reset_us
                ):
                    tightest = decision
            headers["X-RateLimit-Limit"] = str(tightest.limit)
            headers["X-RateLimit-Remaining"] = str(max(0, tightest.remaining))
            headers["X-RateLimit-Reset"] = str(-(-tightest.reset_us // 1_000_000))


def retry_after(decision: Decision) -> str:
    """Whole seconds until a refused request would be allowed (at least 1)."""
    return str(max(1, math.ceil(decision.retry_us / 1_000_000)))
