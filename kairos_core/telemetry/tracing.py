"""W3C Trace Context: continue the client's trace or start one, with a new span per hop."""

from __future__ import annotations

import random
import re

_TRACEPARENT_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


def next_traceparent(incoming: str | None) -> tuple[str, str, str, str | None]:
    """(trace id, our span id, traceparent to send upstream, the client's span id or None)."""
    if incoming:
        found = _TRACEPARENT_RE.match(incoming.strip().lower())
        if found and found.group(1) != _ZERO_TRACE and found.group(2) != _ZERO_SPAN:
            trace, parent, flags = found.groups()
            span = f"{random.getrandbits(64):016x}"
            return trace, span, f"00-{trace}-{span}-{flags}", parent
    ids = f"{random.getrandbits(192):048x}"  # one draw: trace id (32 digits) and span id (16)
    trace, span = ids[:32], ids[32:]
    return trace, span, f"00-{trace}-{span}-01", None
