"""Fixtures shared by the kairos-balancers tests: backend objects and request stand-ins."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from multidict import CIMultiDict

from kairos_core import Backend
from kairos_core.config import validate_config

BackendsFactory = Callable[..., tuple[Backend, ...]]
RequestFactory = Callable[..., Any]


def backends_for(names: Sequence[str], weights: Sequence[int] | None = None) -> tuple[Backend, ...]:
    """Pool backends built from a validated config, on distinct loopback ports."""
    weights = list(weights) if weights is not None else [1] * len(names)
    pool = {
        "backends": [
            {"url": f"http://127.0.0.1:{20000 + i}", "name": name, "weight": weight}
            for i, (name, weight) in enumerate(zip(names, weights, strict=True))
        ]
    }
    upstream = validate_config({"upstreams": {"test": pool}}, "<test>").config.upstreams["test"]
    return tuple(Backend("test", config, upstream) for config in upstream.backends)


@pytest.fixture
def make_backends() -> BackendsFactory:
    """`make_backends("a", "b", weights=[2, 1])`: pool backends on distinct loopback ports."""

    def make(*names: str, weights: Sequence[int] | None = None) -> tuple[Backend, ...]:
        return backends_for(names, weights)

    return make


@pytest.fixture
def make_request() -> RequestFactory:
    """A stand-in for RequestContext with the fields balancers read."""

    def make(
        client_ip: str = "192.0.2.1",
        headers: dict[str, str] | None = None,
        path: str = "/",
        query: str = "",
    ) -> Any:
        raw_path = f"{path}?{query}" if query else path
        return SimpleNamespace(
            client_ip=client_ip,
            headers=CIMultiDict(headers or {}),
            path=path,
            request=SimpleNamespace(raw_path=raw_path),
        )

    return make
