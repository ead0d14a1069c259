"""W3C Trace Context: continue the client's trace or start one, with a new span per hop."""

from __future__ import annotations

import random
import re

from multidict import istr

_TRACEPARENT_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
TRACEPARENT = istr("traceparent")
"""The W3C header's name, lower-cased once for multidict lookups."""


def random_hex(size: int) -> str:
    """`size` random bytes as lower-case hex, from the non-cryptographic generator (ids, not
    secrets: no system call); a third of the cost of formatting the integer with `:0Nx`."""
    return random.getrandbits(size * 8).to_bytes(size, "little").hex()


def next_traceparent(incoming: str | None) -> tuple[str, str, str, str | None]:
    """(trace id, our span id, traceparent to send upstream, the client's span id or None)."""
    if incoming:
        found = _TRACEPARENT_RE.match(incoming.strip().lower())
        if found and found.group(1) != _ZERO_TRACE and found.group(2) != _ZERO_SPAN:
            trace, parent, flags = found.groups()
            span = random_hex(8)
            return trace, span, f"00-{trace}-{span}-{flags}", parent
    ids = random_hex(24)  # one draw: trace id (32 digits) and span id (16)
    trace, span = ids[:32], ids[32:]
    return trace, span, f"00-{trace}-{span}-01", None
