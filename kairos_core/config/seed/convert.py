"""Convert a validated seed `config.json` into a native config document, with warnings."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from kairos_core.config.errors import ConfigError, ConfigProblem, Loc
from kairos_core.config.models import derive_route_name
from kairos_core.config.seed import features
from kairos_core.config.seed.ai import AiPolicyError, ai_balancer
from kairos_core.config.seed.models import SeedBackend, SeedConfig, SeedRouter

_PARAM = re.compile(r"\{([^{}:]+)(?::path)?\}")
SCHEMES = {
    "http": ("http", {"http", "https"}),
    "websocket": ("ws", {"ws", "wss", "http", "https"}),
    "ftp": ("ftp", {"ftp", "ftps"}),
    "dns": ("dns", {"dns"}),
}
MIN_SECRET_BYTES = 32
LISTENER_HINTS = {
    "ftp": "{{protocol: ftp, host: 0.0.0.0, port: 2121, config: {{upstream: {pool}}}}}",
    "dns": '{{protocol: dns, host: 0.0.0.0, port: 5353, config: {{zones: {{".": {pool}}}}}}}',
}


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
        self.source = source
        self.seed_lines = seed_lines
        self.lines: dict[Loc, int] = {}
        self.problems: list[ConfigProblem] = []
        self.warnings: list[ConfigProblem] = []
        self.names: set[str] = set()
        self.jwt = features.jwt_config(seed.jwt) if seed.jwt else None
        self.jwt_used = False
        self.ai_used = False

    def _line(self, loc: Loc) -> int | None:
        for end in range(len(loc), -1, -1):
            line = self.seed_lines.get(loc[:end])
            if line is not None:
                return line
        return None

    def warn(self, loc: Loc, message: str) -> None:
        """Record a warning about the seed field at `loc`."""
        self.warnings.append(ConfigProblem(loc, message, self._line(loc)))

    def fail(self, loc: Loc, message: str) -> None:
        """Record an error about the seed field at `loc`."""
        self.problems.append(ConfigProblem(loc, message, self._line(loc)))

    def trace(self, native: Loc, seed: Loc) -> None:
        """Errors found later at the native field `native` point at the seed field's line."""
        line = self._line(seed)
        if line is not None:
            self.lines[native] = line

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
            self.warn(("jwt",), "no router has auth_required: true, so nothing uses this check")
        if self.seed.ai is not None and not self.ai_used:
            self.warn(("ai",), "no router has an enabled ai_policy, so nothing uses this model")
        if self.problems:
            raise ConfigError(self.source, self.problems)
        ordered = sorted(self.warnings, key=lambda w: w.line or 0)
        rendered = tuple(w.render(self.source) for w in ordered)
        return SeedConversion(data, self.lines, rendered)

    def _check_secret(self, secret: str) -> None:
        if features.is_env_reference(secret):
            return
        if len(secret.encode()) < MIN_SECRET_BYTES:
            self.fail(
                ("jwt", "secret"),
                f"too short ({len(secret.encode())} bytes): an HS256 secret needs at least "
                f"{MIN_SECRET_BYTES} (the seed required 32 characters; the jwt plugin refuses "
                "shorter keys, RFC 7518)",
            )
        else:
            self.warn(
                ("jwt", "secret"),
                "the secret is written in the file: keep it in the environment instead, "
                '"secret": "${JWT_SECRET}" (in this file or in the YAML that `kairos config '
                "migrate` writes)",
            )

    def _global_plugins(self) -> list[dict[str, Any]]:
        limit = self.seed.rate_limit
        if limit is None:
            return []
        self.trace(("plugins", 0), ("rate_limit",))
        if limit.strategy in ("PerUser", "PerUserAndRoute"):
            open_routes = [
                derive_route_name(r.external_path)
                for r in self.seed.routers
                if not r.auth_required and r.protocol in ("http", "websocket")
            ]
            if open_routes:
                self.warn(
                    ("rate_limit", "strategy"),
                    f"{limit.strategy} counts per authenticated user; requests on routes "
                    f"without auth_required ({', '.join(open_routes)}) have no user and are not "
                    "limited (on_missing_key: skip)",
                )
        if limit.enable_redis:
            self.warn(
                ("rate_limit", "enable_redis"),
                "the seed config names no Redis server: the converted config uses "
                f"{features.REDIS_URL} (set KAIROS_REDIS_URL)",
            )
        if limit.window_type == "TokenBucket" and limit.burst_allowance:
            self.warn(
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
        self.trace(("routes", i), at)
        self.trace(("routes", i, "name"), at)
        route: dict[str, Any] = {"name": self._unique_name(router.external_path)}
        route["path"] = router.external_path
        self.trace(("routes", i, "path"), (*at, "external_path"))
        if router.internal_path is not None and router.internal_path != router.external_path:
            declared = set(_PARAM.findall(router.external_path))
            unknown = [p for p in _PARAM.findall(router.internal_path) if p not in declared]
            if unknown:
                self.fail(
                    (*at, "internal_path"),
                    f"uses {', '.join(unknown)} which external_path does not define",
                )
            route["rewrite"] = router.internal_path
            self.trace(("routes", i, "rewrite"), (*at, "internal_path"))
        if router.methods:
            route["methods"] = [m.upper() for m in router.methods]
            self.trace(("routes", i, "methods"), (*at, "methods"))
        elif router.methods is not None:
            self.warn((*at, "methods"), "empty: the route accepts every method")
        upstream = self._upstream(router, at, ("routes", i, "upstream"))
        if upstream is None:
            return None
        route["upstream"] = upstream
        if router.retry is not None:
            route["retry"] = features.retry_config(router.retry)
            self.trace(("routes", i, "retry"), (*at, "retry"))
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
                self.fail((*at, "auth_required"), "needs the top-level `jwt` section")
            else:
                self.trace((*native, len(plugins)), (*at, "auth_required"))
                plugins.append({"name": "jwt", "config": self.jwt})
                self.jwt_used = True
        request, response = router.request_transformation, router.response_transformation
        for side, name in (
            (request, "request_transformation"),
            (response, "response_transformation"),
        ):
            for k, header in enumerate(side.headers if side else ()):
                for field in features.unused_header_fields(header):
                    self.warn(
                        (*at, name, "headers", k, field),
                        f"not used by action {header.action}; ignored",
                    )
        transform = features.transform_config(request, response)
        if transform:
            seed_field = "request_transformation" if request else "response_transformation"
            self.trace((*native, len(plugins)), (*at, seed_field))
            plugins.append({"name": "transform", "config": transform})
        return plugins

    def _backends(self, router: SeedRouter, at: Loc) -> list[tuple[SeedBackend, Loc]]:
        if router.backends is not None:
            return [(b, (*at, "backends", k)) for k, b in enumerate(router.backends)]
        legacy = SeedBackend(host=router.host or "", port=router.port or 1)
        return [(legacy, at)]

    def _upstream(self, router: SeedRouter, at: Loc, native: Loc) -> dict[str, Any] | None:
        backends = self._backends(router, at)
        entries: list[tuple[dict[str, Any], Loc]] = []
        for backend, loc in backends:
            url = self._backend_url(backend, router.protocol, loc)
            if url is None:
                continue
            entry: dict[str, Any] = {"url": url}
            if backend.weight != 1:
                entry["weight"] = backend.weight
            entries.append((entry, loc))
        if len(entries) != len(backends):
            return None
        pool: dict[str, Any] = {}
        self.trace(native, (*at, "backends") if router.backends is not None else (*at, "host"))
        policy = router.ai_policy
        if policy is not None and policy.enabled and router.protocol in ("http", "websocket"):
            self.ai_used = True
            try:
                balancer, note = ai_balancer(
                    policy, self.seed.ai, router.load_balancing_strategy, len(entries)
                )
            except AiPolicyError as exc:
                self.fail((*at, "ai_policy", *exc.field), exc.message)
                return None
            if note:
                self.warn((*at, "load_balancing_strategy"), note)
            endpoint = balancer["config"]["endpoint"]
            key = endpoint.get("api_key_env")
            self.warn(
                (*at, "ai_policy"),
                f"the model {endpoint['model']} is asked at {endpoint['base_url']}"
                + (f" with the API key from the environment variable {key}" if key else "")
                + "; describe the backends (balancer.config.backends) to help it choose",
            )
            first = policy.fallback_backend_index
            if first:  # the `first` fallback takes backends in order: the seed's pick leads
                entries.insert(0, entries.pop(first))
            pool["balancer"] = balancer
            self.trace((*native, "balancer"), (*at, "ai_policy"))
        elif (balancer_ref := features.BALANCERS[router.load_balancing_strategy]) is not None:
            pool["balancer"] = balancer_ref
            self.trace((*native, "balancer"), (*at, "load_balancing_strategy"))
        pool = {"backends": [entry for entry, _ in entries], **pool}
        for k, (_, loc) in enumerate(entries):
            self.trace((*native, "backends", k), loc)
        if router.protocol in ("http", "websocket"):
            self._health_check(backends, pool, native)
        return pool

    def _health_check(
        self, backends: list[tuple[SeedBackend, Loc]], pool: dict[str, Any], native: Loc
    ) -> None:
        paths = [(b.health_check_path, loc) for b, loc in backends if b.health_check_path]
        if not paths:
            return
        path, first_loc = paths[0]
        pool["health_check"] = {"active": {"path": path}}
        self.trace((*native, "health_check"), (*first_loc, "health_check_path"))
        for other, loc in paths[1:]:
            if other != path:
                self.warn(
                    (*loc, "health_check_path"),
                    f"Kairos probes every backend of a pool at one path: {path} is used",
                )
        for backend, loc in backends:
            if not backend.health_check_path:
                self.warn(
                    loc,
                    f"no health_check_path: Kairos probes every backend of the pool, this one "
                    f"too, at {path} (it leaves rotation if that path does not answer 2xx/3xx)",
                )

    def _backend_url(self, backend: SeedBackend, protocol: str, loc: Loc) -> str | None:
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
            self.fail((*loc, "host"), problem)
            return None
        return f"{scheme}://{parts.netloc}:{backend.port}"

    def _protocol_pool(self, router: SeedRouter, j: int, upstreams: dict[str, Any]) -> None:
        at: Loc = ("routers", j)
        name = self._unique_name(router.external_path)
        pool = self._upstream(router, at, ("upstreams", name))
        if pool is None:
            return
        upstreams[name] = pool
        hint = LISTENER_HINTS[router.protocol].format(pool=name)
        self.warn(
            (*at, "protocol"),
            f"Kairos serves {router.protocol.upper()} on a listener of the kairos-{router.protocol} "
            f"plugin, which needs a port the seed config does not give: its backends became "
            f"upstream {name!r}; to serve it, add `listeners: [{{port: 8080}}, {hint}]`",
        )
        ignored = [
            field
            for field in (
                "internal_path",
                "methods",
                "retry",
                "request_transformation",
                "response_transformation",
                "ai_policy",
            )
            if getattr(router, field) is not None
        ]
        ignored += ["auth_required"] if router.auth_required else []
        ignored += [
            f"backends[{k}].health_check_path"
            for k, b in enumerate(router.backends or ())
            if b.health_check_path
        ]
        for field in ignored:
            self.warn(at, f"{field} has no meaning for a {router.protocol} router; ignored")
