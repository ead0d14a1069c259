"""Seed backends, strategies, AI policies and health check paths as an inline upstream pool."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from kairos_core.config.errors import Loc
from kairos_core.config.seed import features
from kairos_core.config.seed.ai import AiPolicyError, ai_balancer
from kairos_core.config.seed.models import SeedAi, SeedBackend, SeedRouter
from kairos_core.config.seed.notes import ConversionNotes

SCHEMES = {
    "http": ("http", {"http", "https"}),
    "websocket": ("ws", {"ws", "wss", "http", "https"}),
    "ftp": ("ftp", {"ftp", "ftps"}),
    "dns": ("dns", {"dns"}),
}
"""Per protocol: the scheme of a host given without one, and the schemes allowed."""


def seed_backends(router: SeedRouter, at: Loc) -> list[tuple[SeedBackend, Loc]]:
    """A router's backends with their seed field paths (the legacy host+port as one)."""
    if router.backends is not None:
        return [(b, (*at, "backends", k)) for k, b in enumerate(router.backends)]
    return [(SeedBackend(host=router.host or "", port=router.port or 1), at)]


def upstream_pool(
    router: SeedRouter, at: Loc, native: Loc, ai: SeedAi | None, notes: ConversionNotes
) -> dict[str, Any] | None:
    """The inline pool of a router, or None (with problems noted) when it cannot be built."""
    backends = seed_backends(router, at)
    entries: list[tuple[dict[str, Any], Loc]] = []
    for backend, loc in backends:
        url = backend_url(backend, router.protocol, loc, notes)
        if url is not None:
            entry: dict[str, Any] = {"url": url}
            if backend.weight != 1:
                entry["weight"] = backend.weight
            entries.append((entry, loc))
    if len(entries) != len(backends):
        return None
    notes.trace(native, (*at, "backends") if router.backends is not None else (*at, "host"))
    balancer: Any = features.BALANCERS[router.load_balancing_strategy]
    policy = router.ai_policy
    if policy is not None and policy.enabled and router.protocol in ("http", "websocket"):
        try:
            balancer, note = ai_balancer(policy, ai, router.load_balancing_strategy, len(entries))
        except AiPolicyError as exc:
            notes.fail((*at, "ai_policy", *exc.field), exc.message)
            return None
        if note:
            notes.warn((*at, "load_balancing_strategy"), note)
        endpoint = balancer["config"]["endpoint"]
        key = endpoint.get("api_key_env")
        notes.warn(
            (*at, "ai_policy"),
            f"the model {endpoint['model']} is asked at {endpoint['base_url']}"
            + (f" with the API key from the environment variable {key}" if key else "")
            + "; describe the backends (balancer.config.backends) to help it choose",
        )
        first = policy.fallback_backend_index
        if first:  # the `first` fallback takes backends in order: the seed's pick leads
            entries.insert(0, entries.pop(first))
        notes.trace((*native, "balancer"), (*at, "ai_policy"))
    elif balancer is not None:
        notes.trace((*native, "balancer"), (*at, "load_balancing_strategy"))
    pool: dict[str, Any] = {"backends": [entry for entry, _ in entries]}
    for k, (_, loc) in enumerate(entries):
        notes.trace((*native, "backends", k), loc)
    if balancer is not None:
        pool["balancer"] = balancer
    if router.protocol in ("http", "websocket"):
        active = health_check(backends, notes)
        if active is not None:
            pool["health_check"] = {"active": active}
            notes.trace((*native, "health_check"), at)
    return pool


def health_check(
    backends: list[tuple[SeedBackend, Loc]], notes: ConversionNotes
) -> dict[str, Any] | None:
    """The pool's active check from the backends' health_check_path, if any has one."""
    paths = [(b.health_check_path, loc) for b, loc in backends if b.health_check_path]
    if not paths:
        return None
    path = paths[0][0]
    for other, loc in paths[1:]:
        if other != path:
            notes.warn(
                (*loc, "health_check_path"),
                f"Kairos probes every backend of a pool at one path: {path} is used",
            )
    for backend, loc in backends:
        if not backend.health_check_path:
            notes.warn(
                loc,
                f"no health_check_path: Kairos probes every backend of the pool, this one "
                f"too, at {path} (it leaves rotation if that path does not answer 2xx/3xx)",
            )
    return {"path": path}


def backend_url(
    backend: SeedBackend, protocol: str, loc: Loc, notes: ConversionNotes
) -> str | None:
    """`scheme://host:port` for a seed backend, or None (with the problem noted)."""
    default, allowed = SCHEMES[protocol]
    host = backend.host
    if features.is_env_reference(host):
        return f"{host if '://' in host else f'{default}://{host}'}:{backend.port}"
    scheme, sep, rest = host.partition("://")
    if not sep:
        scheme, rest = default, host
    parts = urlsplit(f"{scheme}://{rest}")
    problem = None
    if scheme not in allowed:
        problem = f"scheme {scheme}:// cannot serve a {protocol} router (use {default}://)"
    elif not parts.hostname or parts.path not in ("", "/") or parts.query:
        problem = "expected a scheme and a host name only, such as http://10.0.0.5"
    elif ":" in parts.netloc.rsplit("]", 1)[-1]:
        problem = "give the port in `port`, not in `host`"
    if problem:
        notes.fail((*loc, "host"), problem)
        return None
    return f"{scheme}://{parts.netloc}:{backend.port}"
