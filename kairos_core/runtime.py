"""Turn a validated config plus the plugin registry into a running route table (built aside)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from kairos_core.config.errors import ConfigError, ConfigProblem, Loc
from kairos_core.config.loader import LoadedConfig
from kairos_core.config.models import GatewayConfig, PluginEntry, UpstreamConfig
from kairos_core.context import Consumer
from kairos_core.metrics import Family, Metrics
from kairos_core.pipeline import (
    AuthLink,
    ChainLink,
    CompiledRoute,
    auth_stage,
    compile_rewrite,
    fold,
    order_links,
)
from kairos_core.plugin_api import BuildContext, GatewayServices, Handler, Phase, Scope
from kairos_core.plugins import Registry
from kairos_core.proxy import make_proxy_handler
from kairos_core.resilience.retry import RetryPolicy
from kairos_core.resilience.traffic import Mirror, TrafficSplit
from kairos_core.router import PatternError, Router, RouteSpec
from kairos_core.telemetry.core_metrics import CoreMetrics, RouteStats, websocket_stats
from kairos_core.tls import TLSConfigError, upstream_context
from kairos_core.upstream.client import AiohttpUpstreamClient, UpstreamClient
from kairos_core.upstream.lean import LeanUpstreamClient
from kairos_core.upstream.pool import UpstreamPool
from kairos_core.websocket import WebSocketProxy

log = logging.getLogger("kairos.runtime")

_PRE_AUTH = (Phase.LOG, Phase.PRE_AUTH)


def plugin_references(config: GatewayConfig) -> dict[str, list[Loc]]:
    """Every plugin/component name the configuration refers to, with where (first use first)."""
    refs: dict[str, list[Loc]] = {}

    def add(name: str, loc: Loc) -> None:
        refs.setdefault(name, []).append(loc)

    for i, entry in enumerate(config.plugins):
        add(entry.name, ("plugins", i, "name"))
    for r, route in enumerate(config.routes):
        for i, entry in enumerate(route.plugins):
            add(entry.name, ("routes", r, "plugins", i, "name"))
        if isinstance(route.upstream, UpstreamConfig):
            add(route.upstream.balancer.name, ("routes", r, "upstream", "balancer"))
    for c, consumer in enumerate(config.consumers):
        for i, entry in enumerate(consumer.plugins):
            add(entry.name, ("consumers", c, "plugins", i, "name"))
    for name, upstream in config.upstreams.items():
        add(upstream.balancer.name, ("upstreams", name, "balancer"))
    for i, listener in enumerate(config.listeners):
        if listener.protocol != "http":
            add(listener.protocol, ("listeners", i, "protocol"))
    for i, name in enumerate(config.admin.plugins):
        add(name, ("admin", "plugins", i))
    return refs


def required_plugin_names(config: GatewayConfig) -> list[str]:
    """Every plugin/component name the configuration refers to, in first-use order."""
    return list(plugin_references(config))


@dataclass
class Runtime:
    """One configuration, fully built: router, routes, pools and every plugin instance."""

    loaded: LoadedConfig
    router: Router[CompiledRoute]
    routes: list[CompiledRoute]
    pools: dict[str, UpstreamPool]
    services: GatewayServices
    resources: list[Any] = field(default_factory=list)
    listener_settings: dict[int, BaseModel] = field(default_factory=dict)
    """Validated settings of each non-HTTP listener, by its index in `listeners`."""
    in_flight: int = 0
    """Requests (and upgraded connections) still running on this configuration."""

    @property
    def config(self) -> GatewayConfig:
        """The configuration this runtime was built from."""
        return self.loaded.config

    async def start(self) -> None:
        """Start health checks and plugin instances that have background work."""
        for pool in self.pools.values():
            await pool.start()
        for resource in self.resources:
            starter = getattr(resource, "start", None)
            if starter is not None:
                await starter()

    def adopt(self, old: Runtime) -> None:
        """Carry backend health and circuit state over from the runtime this one replaces."""
        for name, pool in self.pools.items():
            previous = old.pools.get(name)
            if previous is not None:
                pool.adopt(previous)

    async def stop_background(self) -> None:
        """Stop health checks and timers at once (the runtime has just been replaced)."""
        for pool in self.pools.values():
            await pool.stop_background()

    async def close(self) -> None:
        """Release pools and plugin instances; call once no request uses this runtime."""
        for resource in reversed(self.resources):
            closer = getattr(resource, "close", None)
            if closer is not None:
                try:
                    await closer()
                except Exception:
                    log.exception("closing %r failed", resource)
        for pool in self.pools.values():
            await pool.close()


class _Builder:
    """Collects problems while building, so one run reports every mistake in the file."""

    def __init__(self, loaded: LoadedConfig, registry: Registry, services: GatewayServices) -> None:
        self.loaded = loaded
        self.registry = registry
        self.services = services
        self.problems: list[ConfigProblem] = []
        self.resources: list[Any] = []
        self._order = 0

    def problem(self, loc: Loc, message: str) -> None:
        self.problems.append(self.loaded.problem(loc, message))

    def pool(self, name: str, config: UpstreamConfig, loc: Loc) -> UpstreamPool | None:
        balancer = self.registry.balancers.get(config.balancer.name)
        if balancer is None:
            self.problem(
                (*loc, "balancer"),
                f"unknown balancer {config.balancer.name!r}; available: "
                f"{', '.join(sorted(self.registry.balancers)) or 'none'}",
            )
            return None
        settings = self.validate(
            balancer.config_model, config.balancer.config, (*loc, "balancer", "config")
        )
        if settings is None:
            return None
        needs_tls = any(b.url.startswith(("https:", "wss:")) for b in config.backends)
        try:
            ssl_context = upstream_context(config.tls) if needs_tls else None
        except TLSConfigError as exc:
            self.problem((*loc, "tls"), str(exc))
            return None
        client: UpstreamClient
        if config.client == "lean":
            client = LeanUpstreamClient(
                config, self.services.config.resolver, ssl_context, config.tls.server_name
            )
        else:
            client = AiohttpUpstreamClient(
                config, self.services.config.resolver, ssl_context, config.tls.server_name
            )
        try:
            return UpstreamPool(
                name,
                config,
                client,
                lambda pool: balancer.build(settings, pool),
                resolver_config=self.services.config.resolver,
            )
        except (ValueError, TypeError) as exc:
            self.problem((*loc, "balancer"), str(exc))
            return None

    def validate(self, model: type[BaseModel], data: dict[str, Any], loc: Loc) -> BaseModel | None:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            self.problems.extend(self.loaded.validation_error(exc, loc).problems)
            return None

    def entry(
        self, entry: PluginEntry, loc: Loc, scope: Scope, route: str | None, consumer: str | None
    ) -> ChainLink | AuthLink | None:
        """Validate and build one plugin entry; None (with a problem recorded) if it fails."""
        registry = self.registry
        kind = registry.kind_of(entry.name)
        if kind is None:
            self.problem(
                (*loc, "name"),
                f"no plugin registers {entry.name!r}; registered: "
                f"{', '.join(sorted(registry.stages) + sorted(registry.authenticators)) or 'none'}",
            )
            return None
        if kind == "balancer":
            self.problem(
                (*loc, "name"),
                f"{entry.name!r} is a balancer: use `balancer: {entry.name}` on an upstream",
            )
            return None
        if kind == "protocol":
            self.problem(
                (*loc, "name"),
                f"{entry.name!r} is a protocol handler: use it as a listener's `protocol`",
            )
            return None
        self._order += 1
        build_ctx = BuildContext(scope, route, consumer, self.services)
        if kind == "auth":
            auth = registry.authenticators[entry.name]
            settings = self.validate(auth.config_model, entry.config, (*loc, "config"))
            if settings is None:
                return None
            built = self._build(lambda: auth.build(settings, build_ctx), loc)
            if built is None:
                return None
            priority = auth.priority if entry.priority is None else entry.priority
            return AuthLink(entry.name, priority, scope, built)
        stage = registry.stages[entry.name]
        settings = self.validate(stage.config_model, entry.config, (*loc, "config"))
        if settings is None:
            return None
        middleware = self._build(lambda: stage.build(settings, build_ctx), loc)
        if middleware is None:
            return None
        assert stage.phase is not None
        priority = stage.priority if entry.priority is None else entry.priority
        return ChainLink(entry.name, stage.phase, priority, scope, middleware, self._order)

    def _build(self, factory: Any, loc: Loc) -> Any:
        try:
            built = factory()
        except (ValueError, TypeError, OSError) as exc:
            self.problem((*loc, "config"), f"plugin rejected its settings: {exc}")
            return None
        self.resources.append(built)
        return built

    def entries(
        self,
        entries: Sequence[PluginEntry],
        loc: Loc,
        scope: Scope,
        route: str | None,
        consumer: str | None,
    ) -> dict[str, ChainLink | AuthLink | None]:
        """Build a scope's entries; a disabled entry maps to None (it removes a broader one)."""
        built: dict[str, ChainLink | AuthLink | None] = {}
        for index, entry in enumerate(entries):
            entry_loc = (*loc, index)
            if entry.name in built:
                self.problem((*entry_loc, "name"), f"plugin {entry.name!r} is listed twice here")
                continue
            built[entry.name] = (
                self.entry(entry, entry_loc, scope, route, consumer) if entry.enabled else None
            )
        return built


def build_runtime(
    loaded: LoadedConfig,
    registry: Registry,
    *,
    worker_id: int = 0,
    workers: int = 1,
    metrics: Metrics | None = None,
    instance_id: str = "",
    core: CoreMetrics | None = None,
) -> Runtime:
    """Validate every plugin entry, build pools, chains and the router; raise ConfigError."""
    config = loaded.config
    consumers = {c.name: Consumer(c.name, c.metadata) for c in config.consumers}
    services = GatewayServices(
        config, consumers, {}, worker_id, workers, instance_id, metrics or Metrics()
    )
    builder = _Builder(loaded, registry, services)
    pools: dict[str, UpstreamPool] = {}
    for name, upstream in config.upstreams.items():
        pool = builder.pool(name, upstream, ("upstreams", name))
        if pool is not None:
            pools[name] = pool
    services.pools = pools

    listener_settings: dict[int, BaseModel] = {}
    for index, listener in enumerate(config.listeners):
        if listener.protocol == "http":
            if listener.config:
                builder.problem(("listeners", index, "config"), "HTTP listeners take no `config`")
            continue
        handler = registry.protocols.get(listener.protocol)
        if handler is None:
            builder.problem(
                ("listeners", index, "protocol"),
                f"unknown protocol {listener.protocol!r}; available: http, "
                f"{', '.join(sorted(registry.protocols)) or 'none'}",
            )
            continue
        validated = builder.validate(
            handler.config_model, listener.config, ("listeners", index, "config")
        )
        if validated is None:
            continue
        listener_settings[index] = validated
        if handler.prepare is not None:
            try:
                handler.prepare(listener, validated, services)
            except (ValueError, TypeError) as exc:
                builder.problem(("listeners", index, "config"), str(exc))

    global_links = builder.entries(config.plugins, ("plugins",), "global", None, None)
    consumer_links = {
        consumer.name: builder.entries(
            consumer.plugins, ("consumers", index, "plugins"), "consumer", None, consumer.name
        )
        for index, consumer in enumerate(config.consumers)
    }
    for index, consumer in enumerate(config.consumers):
        for pos, entry in enumerate(consumer.plugins):
            link = consumer_links[consumer.name].get(entry.name)
            if isinstance(link, AuthLink) or (
                isinstance(link, ChainLink) and link.phase in _PRE_AUTH
            ):
                builder.problem(
                    ("consumers", index, "plugins", pos, "name"),
                    f"{entry.name!r} runs before authentication, so it cannot be set per consumer",
                )

    routes: list[CompiledRoute] = []
    specs: list[RouteSpec[CompiledRoute]] = []
    for index, route_config in enumerate(config.routes):
        loc: Loc = ("routes", index)
        name = route_config.display_name
        if isinstance(route_config.upstream, str):
            pool = pools.get(route_config.upstream)
        else:
            pool = builder.pool(f"route:{name}", route_config.upstream, (*loc, "upstream"))
            if pool is not None:
                pools[pool.name] = pool
        route_links = builder.entries(route_config.plugins, (*loc, "plugins"), "route", name, None)
        if pool is None:
            continue
        route = CompiledRoute(
            name=name,
            index=index,
            config=route_config,
            pool=pool,
            timeouts=route_config.timeouts,
            max_body_size=int(route_config.max_body_size or config.server.max_body_size),
            compression=(
                config.server.compression.enabled
                if route_config.compression is None
                else route_config.compression
            ),
        )
        if route_config.websocket.enabled:
            route.websocket = WebSocketProxy(
                route_config.websocket, websocket_stats(core, name) if core is not None else None
            )
        if route_config.retry is not None:
            route.retry = RetryPolicy(route_config.retry)
        if route_config.split:
            route.split = TrafficSplit(route_config.split, pools, pool)
        if route_config.mirror is not None:
            route.mirror = Mirror(
                route_config.mirror, pools[route_config.mirror.upstream], route.timeouts
            )
            builder.resources.append(route.mirror)
        if route_config.rewrite is not None:
            try:
                route.rewrite_parts = compile_rewrite(route_config.rewrite)
            except ValueError as exc:
                builder.problem((*loc, "rewrite"), str(exc))
                continue
            declared = _param_names(route_config.path or route_config.prefix or "")
            unknown = [t for t, is_param in route.rewrite_parts if is_param and t not in declared]
            if unknown:
                builder.problem(
                    (*loc, "rewrite"),
                    f"rewrite uses {', '.join(unknown)} which the path does not define",
                )
                continue
        if core is not None:
            route.stats = RouteStats(core, name)
        _assemble(
            route, config.server.consumer_header, global_links, route_links, consumer_links, core
        )
        routes.append(route)
        specs.append(
            RouteSpec(
                target=route,
                path=route_config.path or route_config.prefix or "/",
                prefix=route_config.prefix is not None,
                methods=frozenset(route_config.methods) if route_config.methods else None,
                hosts=tuple(route_config.hosts),
                headers=dict(route_config.headers),
                priority=route_config.priority,
            )
        )
    try:
        router: Router[CompiledRoute] = Router(specs)
    except PatternError as exc:
        bad = next((s.target.index for s in specs if s.path in str(exc)), None)
        builder.problem(("routes", bad, "path") if bad is not None else ("routes",), str(exc))
        router = Router([])
    if builder.problems:
        raise ConfigError(loaded.source, builder.problems)
    return Runtime(loaded, router, routes, pools, services, builder.resources, listener_settings)


def _assemble(
    route: CompiledRoute,
    consumer_header: str | None,
    global_links: dict[str, ChainLink | AuthLink | None],
    route_links: dict[str, ChainLink | AuthLink | None],
    consumer_links: dict[str, dict[str, ChainLink | AuthLink | None]],
    core: CoreMetrics | None,
) -> None:
    """Fold the route's chain: the most specific scope's entry for each plugin wins."""
    effective = {**global_links, **route_links}
    stages = order_links([link for link in effective.values() if isinstance(link, ChainLink)])
    auths = sorted(
        (link for link in effective.values() if isinstance(link, AuthLink)),
        key=lambda a: -a.priority,
    )
    pre = [s for s in stages if s.phase in _PRE_AUTH]
    post = [s for s in stages if s.phase not in _PRE_AUTH]
    proxy = make_proxy_handler(route)
    variants: dict[str, list[ChainLink]] = {}
    if auths:
        for consumer, links in consumer_links.items():
            if links:
                merged = {**{s.name: s for s in post}, **links}
                variants[consumer] = order_links(
                    [v for v in merged.values() if isinstance(v, ChainLink)]
                )
                route.consumer_chains[consumer] = [link.describe() for link in variants[consumer]]

    def build(timing: tuple[Family, str] | None) -> Handler:
        default_post = fold(post, proxy, timing)
        if not auths:
            return fold(pre, default_post, timing)
        chains = {consumer: fold(links, proxy, timing) for consumer, links in variants.items()}
        return fold(pre, auth_stage(auths, default_post, chains, consumer_header), timing)

    route.handler = build(None)
    if core is not None and (stages or auths):
        route.timed_handler = build((core.plugin_duration, route.name))
    route.chain = (
        [s.describe() for s in pre]
        + [
            {"name": a.name, "phase": "auth", "priority": a.priority, "scope": a.scope}
            for a in auths
        ]
        + [s.describe() for s in post]
        + [{"name": "proxy", "phase": "proxy", "priority": 0, "scope": "core"}]
    )


def _param_names(path: str) -> set[str]:
    names = set()
    for segment in path.split("/"):
        if segment.startswith("{") and segment.endswith("}"):
            names.add(segment[1:-1].split(":", 1)[0])
    return names
