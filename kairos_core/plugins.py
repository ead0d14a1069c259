"""Plugin discovery (stevedore), hook registration (pluggy) and the registry they fill."""

from __future__ import annotations

import dataclasses
import importlib.metadata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import pluggy
from stevedore import NamedExtensionManager

from kairos_core import hookspecs
from kairos_core.plugin_api import (
    AdminRoute,
    AuthPlugin,
    BalancerPlugin,
    Phase,
    ProtocolPlugin,
    StagePlugin,
)

ENTRY_POINT_GROUP = "kairos"

Kind = Literal["stage", "auth", "balancer", "protocol"]

# hook name -> (registry kind, default phase for stages registered through it)
_STAGE_HOOKS: dict[str, Phase] = {
    "register_filters": Phase.PRE_AUTH,
    "register_rate_limiters": Phase.TRAFFIC,
    "register_caches": Phase.CACHE,
    "register_transformers": Phase.TRANSFORM,
    "register_loggers": Phase.LOG,
}


class PluginError(Exception):
    """A plugin the configuration needs is missing, fails to import or misbehaves."""


class MissingPlugins(PluginError):
    """Plugins the configuration names are not installed."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        super().__init__(
            "\n".join(
                f"plugin {n!r} is enabled by the configuration but not installed "
                f"(no entry point {n!r} in group {ENTRY_POINT_GROUP!r}; "
                "`kairos plugins list` shows what is installed)"
                for n in names
            )
        )


@dataclass(frozen=True, slots=True)
class InstalledPlugin:
    """An entry point in the `kairos` group, read without importing it."""

    name: str
    target: str
    distribution: str | None
    version: str | None


def installed_plugins() -> list[InstalledPlugin]:
    """Every installed plugin entry point with its distribution, sorted; nothing is imported."""
    found = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist
        found.append(
            InstalledPlugin(
                name=ep.name,
                target=ep.value,
                distribution=dist.metadata["Name"] if dist is not None else None,
                version=dist.version if dist is not None else None,
            )
        )
    return sorted(found, key=lambda p: p.name)


@dataclass
class Registry:
    """Everything the loaded plugins registered, by component name."""

    stages: dict[str, StagePlugin[Any]] = field(default_factory=dict)
    authenticators: dict[str, AuthPlugin[Any]] = field(default_factory=dict)
    balancers: dict[str, BalancerPlugin[Any]] = field(default_factory=dict)
    protocols: dict[str, ProtocolPlugin[Any]] = field(default_factory=dict)
    admin_routes: list[AdminRoute] = field(default_factory=list)
    owners: dict[str, str] = field(default_factory=dict)
    """Component name -> the plugin (pluggy name) that registered it."""

    def kind_of(self, name: str) -> Kind | None:
        """Which kind of component `name` is, if any plugin registered it."""
        if name in self.stages:
            return "stage"
        if name in self.authenticators:
            return "auth"
        if name in self.balancers:
            return "balancer"
        if name in self.protocols:
            return "protocol"
        return None

    def names(self) -> set[str]:
        """Every registered component name."""
        return (
            set(self.stages) | set(self.authenticators) | set(self.balancers) | set(self.protocols)
        )


class PluginHost:
    """Owns the pluggy manager: built-ins first, then the entry points the config enables."""

    def __init__(self, builtins: Iterable[object] | None = None) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self._builtin_names: set[str] = set()
        for plugin in builtins if builtins is not None else _default_builtins():
            name = self.pm.register(plugin)
            if name:
                self._builtin_names.add(name)
        self.loaded: dict[str, InstalledPlugin] = {}

    def load(self, names: Iterable[str]) -> None:
        """Import and register the named entry points; fail loudly on any problem."""
        wanted = [n for n in dict.fromkeys(names) if n not in self.loaded]
        if not wanted:
            return
        installed = {p.name: p for p in installed_plugins()}
        missing = [n for n in wanted if n not in installed]
        failures: list[str] = []

        def on_failure(
            _manager: Any, ep: importlib.metadata.EntryPoint, err: BaseException
        ) -> None:
            info = installed.get(ep.name)
            dist = f" (distribution {info.distribution} {info.version})" if info else ""
            failures.append(
                f"plugin {ep.name!r}{dist} failed to load from {ep.value}: "
                f"{type(err).__name__}: {err}"
            )

        manager: NamedExtensionManager[Any] = NamedExtensionManager(
            ENTRY_POINT_GROUP,
            names=[n for n in wanted if n in installed],
            name_order=True,
            on_load_failure_callback=on_failure,
            on_missing_entrypoints_callback=None,
        )
        if failures:
            raise PluginError("\n".join(failures))
        for ext in manager.extensions:
            if not self.pm.is_registered(ext.plugin):
                self.pm.register(ext.plugin, name=f"{ENTRY_POINT_GROUP}:{ext.name}")
            self.loaded[ext.name] = installed[ext.name]
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"a plugin implements an unknown hook: {exc}") from None
        if missing:
            raise MissingPlugins(missing)

    def load_all(self) -> None:
        """Import every installed plugin (for `kairos plugins list --hooks` and CLI commands)."""
        self.load(p.name for p in installed_plugins())

    def registry(self) -> Registry:
        """Call the registration hooks (built-ins first) and collect what they register."""
        registry = Registry()
        for hook_name, phase in _STAGE_HOOKS.items():
            self._collect(hook_name, registry, registry.stages, _stage_defaults(phase))
        self._collect("register_authenticators", registry, registry.authenticators)
        self._collect("register_balancers", registry, registry.balancers)
        self._collect("register_protocol_handlers", registry, registry.protocols)
        for impl in self._impls("register_admin_routes"):
            impl.function(register=registry.admin_routes.append)
        return registry

    def hook_names_by_plugin(self) -> dict[str, list[str]]:
        """pluggy plugin name -> the hooks it implements."""
        out: dict[str, list[str]] = {}
        for name, plugin in self.pm.list_name_plugin():
            if plugin is None:
                continue
            out[name] = sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or [])
        return out

    def call(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """Call a lifecycle hook on every plugin (built-ins first); returns the results."""
        return [impl.function(**kwargs) for impl in self._impls(hook_name)]

    def _impls(self, hook_name: str) -> list[pluggy.HookImpl]:
        caller: pluggy.HookCaller = getattr(self.pm.hook, hook_name)
        impls = caller.get_hookimpls()
        builtin = [i for i in impls if i.plugin_name in self._builtin_names]
        return builtin + [i for i in impls if i.plugin_name not in self._builtin_names]

    def _collect(
        self,
        hook_name: str,
        registry: Registry,
        target: dict[str, Any],
        adapt: Callable[[Any], Any] = lambda item: item,
    ) -> None:
        for impl in self._impls(hook_name):
            plugin_name = impl.plugin_name

            def register(item: Any, _owner: str = plugin_name) -> None:
                name = item.name
                previous = registry.owners.get(name)
                if previous is not None and previous not in self._builtin_names:
                    raise PluginError(
                        f"component {name!r} is registered by both {previous!r} and {_owner!r}"
                    )
                if previous is not None:
                    for table in (
                        registry.stages,
                        registry.authenticators,
                        registry.balancers,
                        registry.protocols,
                    ):
                        table.pop(name, None)
                registry.owners[name] = _owner
                target[name] = adapt(item)

            impl.function(register=register)


def _stage_defaults(phase: Phase) -> Callable[[Any], Any]:
    """Check a stage declaration and give it the hook's phase unless it names its own."""

    def adapt(item: Any) -> Any:
        if not isinstance(item, StagePlugin):
            raise PluginError(f"{item!r} is not a StagePlugin")
        return item if item.phase is not None else dataclasses.replace(item, phase=phase)

    return adapt


def _default_builtins() -> list[object]:
    from kairos_core import builtin

    return list(builtin.PLUGINS)
