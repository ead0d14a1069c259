"""Convert a validated seed `config.json` into a native config document, with warnings."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kairos_core.config.errors import Loc
from kairos_core.config.models import derive_route_name
from kairos_core.config.seed import features
from kairos_core.config.seed.models import SeedConfig, SeedRouter
from kairos_core.config.seed.notes import ConversionNotes
from kairos_core.config.seed.upstreams import upstream_pool

_PARAM = re.compile(r"\{([^{}:]+)(?::path)?\}")
MIN_SECRET_BYTES = 32
LISTENER_HINTS = {
    "ftp": "{{protocol: ftp, host: 0.0.0.0, port: 2121, config: {{upstream: {pool}}}}}",
    "dns": '{{protocol: dns, host: 0.0.0.0, port: 5353, config: {{zones: {{".": {pool}}}}}}}',
}
PROTOCOL_IGNORED = (
    "internal_path",
    "methods",
    "retry",
    "request_transformation",
    "response_transformation",
    "ai_policy",
)
"""Router fields that mean nothing for an ftp or dns router."""


@dataclass(frozen=True, slots=True)
class SeedConversion:
    """A native config document converted from the seed format."""

    data: dict[str, Any]
    lines: dict[Loc, int]
    """Native field path -> line of the seed field it came from."""
    warnings: tuple[str, ...]


class SeedConverter:
    """Turns one SeedConfig into native config data, collecting problems and warnings."""

    def __init__(self, seed: SeedConfig, source: str, seed_lines: Mapping[Loc, int]) -> None:
        self.seed = seed
        self.notes = ConversionNotes(source, seed_lines)
        self.names: set[str] = set()
        self.jwt = features.jwt_config(seed.jwt) if seed.jwt else None
        self.jwt_used = False
        self.ai_used = False

    def run(self) -> SeedConversion:
        """Convert everything; raise ConfigError listing every problem found."""
        data: dict[str, Any] = {"version": 1}
        plugins = self._global_plugins()
        if plugins:
            data["plugins"] = plugins
        routes: list[dict[str, Any]] = []
        upstreams: dict[str, Any] = {}
        for j, router in enumerate(self.seed.routers):
            if router.protocol in ("ftp", "dns"):
                self._protocol_pool(router, j, upstreams)
            else:
                route = self._route(router, j, len(routes))
                if route is not None:
                    routes.append(route)
        data["routes"] = routes
        if upstreams:
            data["upstreams"] = upstreams
        if self.seed.jwt is not None:
            self._check_secret(self.seed.jwt.secret)
        if self.seed.jwt is not None and not self.jwt_used:
            self.notes.warn(
                ("jwt",), "no router has auth_required: true, so nothing uses this check"
            )
        if self.seed.ai is not None and not self.ai_used:
            self.notes.warn(
                ("ai",), "no router has an enabled ai_policy, so nothing uses this model"
            )
        self.notes.check()
        return SeedConversion(data, self.notes.lines, self.notes.rendered_warnings())

    def _check_secret(self, secret: str) -> None:
        if features.is_env_reference(secret):
            return
        if len(secret.encode()) < MIN_SECRET_BYTES:
            self.notes.fail(
                ("jwt", "secret"),
                f"too short ({len(secret.encode())} bytes): an HS256 secret needs at least "
                f"{MIN_SECRET_BYTES} (the seed required 32 characters; the jwt plugin refuses "
                "shorter keys, RFC 7518)",
            )
        else:
            self.notes.warn(
                ("jwt", "secret"),
                "the secret is written in the file: keep it in the environment instead, "
                '"secret": "${JWT_SECRET}" (in this file or in the YAML that `kairos config '
                "migrate` writes)",
            )

    def _global_plugins(self) -> list[dict[str, Any]]:
        limit = self.seed.rate_limit
        if limit is None:
            return []
        self.notes.trace(("plugins", 0), ("rate_limit",))
        if limit.strategy in ("PerUser", "PerUserAndRoute"):
            open_routes = [
                derive_route_name(r.external_path)
                for r in self.seed.routers
                if not r.auth_required and r.protocol in ("http", "websocket")
            ]
            if open_routes:
                self.notes.warn(
                    ("rate_limit", "strategy"),
                    f"{limit.strategy} counts per authenticated user; requests on routes "
                    f"without auth_required ({', '.join(open_routes)}) have no user and are not "
                    "limited (on_missing_key: skip)",
                )
        if limit.enable_redis:
            self.notes.warn(
                ("rate_limit", "enable_redis"),
                "the seed config names no Redis server: the converted config uses "
                f"{features.REDIS_URL} (set KAIROS_REDIS_URL)",
            )
        if limit.window_type == "TokenBucket" and limit.burst_allowance:
            self.notes.warn(
                ("rate_limit", "burst_allowance"),
                "the token bucket holds and refills requests_per_window + burst_allowance per "
                "window_duration (Kairos has no separate burst on top of the rate)",
            )
        return [{"name": "rate-limit", "config": features.rate_limit_config(limit)}]

    def _unique_name(self, path: str) -> str:
        base = derive_route_name(path)
        name, n = base, 2
        while name in self.names:
            name, n = f"{base}-{n}", n + 1
        self.names.add(name)
        return name

    def _route(self, router: SeedRouter, j: int, i: int) -> dict[str, Any] | None:
        at: Loc = ("routers", j)
        self.notes.trace(("routes", i), at)
        self.notes.trace(("routes", i, "name"), at)
        route: dict[str, Any] = {"name": self._unique_name(router.external_path)}
        route["path"] = router.external_path
        self.notes.trace(("routes", i, "path"), (*at, "external_path"))
        if router.internal_path is not None and router.internal_path != router.external_path:
            declared = set(_PARAM.findall(router.external_path))
            unknown = [p for p in _PARAM.findall(router.internal_path) if p not in declared]
            if unknown:
                self.notes.fail(
                    (*at, "internal_path"),
                    f"uses {', '.join(unknown)} which external_path does not define",
                )
            route["rewrite"] = router.internal_path
            self.notes.trace(("routes", i, "rewrite"), (*at, "internal_path"))
        if router.methods:
            route["methods"] = [m.upper() for m in router.methods]
            self.notes.trace(("routes", i, "methods"), (*at, "methods"))
        elif router.methods is not None:
            self.notes.warn((*at, "methods"), "empty: the route accepts every method")
        upstream = self._upstream(router, at, ("routes", i, "upstream"))
        if upstream is None:
            return None
        route["upstream"] = upstream
        if router.retry is not None:
            route["retry"] = features.retry_config(router.retry)
            self.notes.trace(("routes", i, "retry"), (*at, "retry"))
        if router.protocol == "http":
            route["websocket"] = {"enabled": False}
        plugins = self._route_plugins(router, at, ("routes", i, "plugins"))
        if plugins:
            route["plugins"] = plugins
        return route

    def _route_plugins(self, router: SeedRouter, at: Loc, native: Loc) -> list[dict[str, Any]]:
        plugins: list[dict[str, Any]] = []
        if router.auth_required:
            if self.jwt is None:
                self.notes.fail((*at, "auth_required"), "needs the top-level `jwt` section")
            else:
                self.notes.trace((*native, len(plugins)), (*at, "auth_required"))
                plugins.append({"name": "jwt", "config": self.jwt})
                self.jwt_used = True
        request, response = router.request_transformation, router.response_transformation
        for side, name in (
            (request, "request_transformation"),
            (response, "response_transformation"),
        ):
            for k, header in enumerate(side.headers if side else ()):
                for field in features.unused_header_fields(header):
                    self.notes.warn(
                        (*at, name, "headers", k, field),
                        f"not used by action {header.action}; ignored",
                    )
        transform = features.transform_config(request, response)
        if transform:
            seed_field = "request_transformation" if request else "response_transformation"
            self.notes.trace((*native, len(plugins)), (*at, seed_field))
            plugins.append({"name": "transform", "config": transform})
        return plugins

    def _upstream(self, router: SeedRouter, at: Loc, native: Loc) -> dict[str, Any] | None:
        if router.ai_policy is not None and router.ai_policy.enabled:
            self.ai_used = self.ai_used or router.protocol in ("http", "websocket")
        return upstream_pool(router, at, native, self.seed.ai, self.notes)

    def _protocol_pool(self, router: SeedRouter, j: int, upstreams: dict[str, Any]) -> None:
        at: Loc = ("routers", j)
        name = self._unique_name(router.external_path)
        pool = self._upstream(router, at, ("upstreams", name))
        if pool is None:
            return
        upstreams[name] = pool
        hint = LISTENER_HINTS[router.protocol].format(pool=name)
        self.notes.warn(
            (*at, "protocol"),
            f"Kairos serves {router.protocol.upper()} on a listener of the kairos-{router.protocol} "
            f"plugin, which needs a port the seed config does not give: its backends became "
            f"upstream {name!r}; to serve it, add `listeners: [{{port: 8080}}, {hint}]`",
        )
        ignored = [f for f in PROTOCOL_IGNORED if getattr(router, f) is not None]
        ignored += ["auth_required"] if router.auth_required else []
        ignored += [
            f"backends[{k}].health_check_path"
            for k, b in enumerate(router.backends or ())
            if b.health_check_path
        ]
        for field in ignored:
            self.notes.warn(at, f"{field} has no meaning for a {router.protocol} router; ignored")
