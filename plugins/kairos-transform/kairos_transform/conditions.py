"""`when:` conditions compiled into one cheap predicate per action."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from kairos_core import RequestContext
from kairos_transform.actions import Condition

Predicate = Callable[[RequestContext, Mapping[str, str], int], bool]
"""(context, headers of the message being edited, backend status or 0) -> applies?"""


def status_set(selectors: list[int | str]) -> frozenset[int]:
    """Expand `[404, '5xx']` into the statuses it names."""
    out: set[int] = set()
    for selector in selectors:
        if isinstance(selector, int):
            out.add(selector)
        else:
            base = int(selector[0]) * 100
            out.update(range(base, base + 100))
    return frozenset(out)


def compile_condition(condition: Condition | None) -> Predicate | None:
    """The predicate for `condition`, or None when the action always applies."""
    if condition is None:
        return None
    statuses = None if condition.status is None else status_set(condition.status)
    methods = None if condition.methods is None else frozenset(condition.methods)
    matchers = tuple((name, re.compile(p)) for name, p in condition.headers.items())
    absent = tuple(condition.absent)

    def applies(ctx: RequestContext, headers: Mapping[str, str], status: int) -> bool:
        if statuses is not None and status not in statuses:
            return False
        if methods is not None and ctx.method not in methods:
            return False
        for name, regex in matchers:
            value = headers.get(name)
            if value is None or regex.search(value) is None:
                return False
        return not any(name in headers for name in absent)

    return applies
