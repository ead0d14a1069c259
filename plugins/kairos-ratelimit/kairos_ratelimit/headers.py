"""Rate-limit response headers: IETF draft (RateLimit-Policy, RateLimit), classic X-RateLimit-*."""

from __future__ import annotations

import math
from collections.abc import Sequence

from multidict import CIMultiDict

from kairos_ratelimit.algorithms import Decision
from kairos_ratelimit.config import LimitSpec


def _seconds(us: int) -> int:
    return max(0, math.ceil(us / 1_000_000))


def _sf_string(text: str) -> str:
    """A structured-field string (RFC 8941): quoted, with `"` and `\\` escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def policy_item(spec: LimitSpec) -> str:
    """One member of RateLimit-Policy: name, quota, window (seconds) when it has one."""
    item = f"{_sf_string(spec.display_name())};q={spec.capacity}"
    if spec.window:
        item += f";w={max(1, math.ceil(spec.window))}"
    return item


class HeaderWriter:
    """Adds the configured headers for the limits a request was checked against."""

    def __init__(self, specs: Sequence[LimitSpec], style: str) -> None:
        self.ietf = style in ("ietf", "both")
        self.classic = style in ("classic", "both")
        self.names = [_sf_string(s.display_name()) for s in specs]
        self.policy = ", ".join(policy_item(s) for s in specs)

    def write(self, headers: CIMultiDict[str], checked: Sequence[tuple[int, Decision]]) -> None:
        """Describe `checked` (limit index, decision) pairs; the tightest one for classic headers."""
        if not checked:
            return
        if self.ietf:
            headers["RateLimit-Policy"] = self.policy
            headers["RateLimit"] = ", ".join(
                f"{self.names[i]};r={max(0, d.remaining)};t={_seconds(d.reset_us)}"
                for i, d in checked
            )
        if self.classic:
            _, tightest = min(checked, key=lambda pair: (pair[1].remaining, -pair[1].reset_us))
            headers["X-RateLimit-Limit"] = str(tightest.limit)
            headers["X-RateLimit-Remaining"] = str(max(0, tightest.remaining))
            headers["X-RateLimit-Reset"] = str(_seconds(tightest.reset_us))


def retry_after(decision: Decision) -> str:
    """Whole seconds until a refused request would be allowed (at least 1)."""
    return str(max(1, math.ceil(decision.retry_us / 1_000_000)))
