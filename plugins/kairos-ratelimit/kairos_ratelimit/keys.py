"""Key builders: what a limit counts by (client IP, consumer, route, a header, a claim, or several)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from kairos_core import RequestContext

KeyFunction = Callable[[RequestContext], str | None]
"""Returns the key for a request, or None when a part of it is missing."""

_MAX_KEY = 96
_AFTER_AUTH = ("consumer", "claim:")


def needs_auth(parts: Sequence[str]) -> list[str]:
    """The parts that only exist once a request is authenticated."""
    return [p for p in parts if p.startswith(_AFTER_AUTH)]


def _part(spec: str) -> KeyFunction:
    if spec == "ip":
        return lambda ctx: ctx.client_ip or None
    if spec == "route":
        return lambda ctx: ctx.route.name
    if spec == "consumer":
        return lambda ctx: ctx.consumer.name if ctx.consumer is not None else None
    if spec.startswith("header:"):
        name = spec.removeprefix("header:")
        return lambda ctx: ctx.request.headers.get(name) or None
    if spec.startswith("claim:"):
        return _claim(spec.removeprefix("claim:").split("."))
    raise ValueError(f"unknown key part {spec!r}")


def _claim(path: list[str]) -> KeyFunction:
    def claim(ctx: RequestContext) -> str | None:
        value: Any = ctx.claims
        for step in path:
            if not isinstance(value, dict) or step not in value:
                return None
            value = value[step]
        if value is None or value == "" or isinstance(value, dict | list):
            return None
        return str(value)

    return claim


def _shorten(key: str) -> str:
    """Long keys (a big header) become a digest, so backends store a bounded key."""
    if len(key) <= _MAX_KEY:
        return key
    return "#" + hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()


def _client_ip(ctx: RequestContext) -> str | None:
    """The key `[ip]`: the client address (shortened like any key, should it ever be long)."""
    ip = ctx.client_ip
    if not ip:
        return None
    return ip if len(ip) <= _MAX_KEY else _shorten(ip)


def key_function(parts: Sequence[str]) -> KeyFunction:
    """One function computing the whole key; `[]` gives every request the same key."""
    if not parts:
        return lambda ctx: "*"
    if list(parts) == ["ip"]:  # the default key: one call instead of three
        return _client_ip
    functions = tuple(_part(p) for p in parts)
    if len(functions) == 1:
        only = functions[0]

        def single(ctx: RequestContext) -> str | None:
            value = only(ctx)
            return None if value is None else _shorten(value)

        return single

    def combined(ctx: RequestContext) -> str | None:
        values = []
        for function in functions:
            value = function(ctx)
            if value is None:
                return None
            values.append(value.replace("\\", "\\\\").replace("|", "\\|"))
        return _shorten("|".join(values))

    return combined


def describe_missing(parts: Sequence[str]) -> str:
    """A phrase naming what the key needs, for the 400 response."""
    return " + ".join(parts) if parts else "nothing"
