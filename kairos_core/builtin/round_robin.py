"""The default balancer: each available backend in turn."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kairos_core.context import RequestContext
from kairos_core.hookspecs import hookimpl
from kairos_core.plugin_api import BalancerPlugin, NoConfig
from kairos_core.upstream.pool import Backend, UpstreamPool


class RoundRobin:
    """Cycles through the candidates; skips over unavailable ones because they are not offered."""

    __slots__ = ("_next",)

    def __init__(self) -> None:
        self._next = 0

    def pick(self, ctx: RequestContext | None, candidates: Sequence[Backend]) -> Backend | None:
        """The next candidate in turn."""
        index = self._next
        self._next = index + 1
        return candidates[index % len(candidates)]


def _build(config: NoConfig, pool: UpstreamPool) -> RoundRobin:
    return RoundRobin()


@hookimpl
def register_balancers(register: Any) -> None:
    """Register `round_robin`, the default balancer of every upstream pool."""
    register(BalancerPlugin(name="round_robin", build=_build, description="Each backend in turn."))
