"""The installed-plugins reference: every component, its phase and its settings model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kairos_core.plugins import InstalledPlugin, PluginHost, Registry, installed_plugins
from kairos_docgen.models import model_reference


def load_registry() -> tuple[list[InstalledPlugin], PluginHost, Registry]:
    """Import every installed plugin (fails loudly on a broken one) and collect its components."""
    host = PluginHost()
    host.load_all()
    return installed_plugins(), host, host.registry()


def _components(registry: Registry) -> list[tuple[str, str, Any]]:
    out: list[tuple[str, str, Any]] = []
    for name, stage in registry.stages.items():
        phase = stage.phase.name.lower() if stage.phase is not None else ""
        out.append((name, f"stage ({phase}, priority {stage.priority})", stage))
    for name, auth in registry.authenticators.items():
        out.append((name, f"authenticator (priority {auth.priority})", auth))
    out += [(name, "balancer", item) for name, item in registry.balancers.items()]
    out += [(name, "protocol handler", item) for name, item in registry.protocols.items()]
    return sorted(out)


def plugins_page(docs_dir: Path, installed: list[InstalledPlugin], registry: Registry) -> str:
    """Entry points installed where the docs are built, and each component's settings."""
    by_entry = {f"kairos:{p.name}": p for p in installed}
    lines = [
        "# Installed plugins",
        "",
        "Generated on every docs build from the plugins installed in the build environment",
        "(`kairos plugins list` shows the same entry points). A plugin's settings go in the",
        "`config` mapping of its entry; the tables below come from its pydantic config model.",
        "",
        "| entry point | distribution | version | docs |",
        "|---|---|---|---|",
    ]
    for plugin in installed:
        page = docs_dir / "plugins" / f"{plugin.name}.md"
        link = f"[{plugin.name}](../plugins/{plugin.name}.md)" if page.is_file() else ""
        lines.append(f"| `{plugin.name}` | {plugin.distribution} | {plugin.version} | {link} |")
    lines += ["", "## Components", ""]
    lines += ["| component | kind | from | description |", "|---|---|---|---|"]
    components = _components(registry)
    for name, kind, item in components:
        owner = registry.owners.get(name, "")
        source = by_entry[owner].distribution if owner in by_entry else "kairos-gateway (built in)"
        lines.append(f"| [`{name}`](#{_slug(name)}) | {kind} | {source} | {item.description} |")
    for name, kind, item in components:
        lines += ["", f"### `{name}` {{#{_slug(name)}}}", ""]
        lines += [f"{kind[:1].upper()}{kind[1:]}. {item.description}".rstrip(), ""]
        if item.config_model.model_fields:
            lines.append(model_reference(item.config_model, level=4, prefix=f"{_slug(name)}-"))
        else:
            lines.append("No settings.")
    return "\n".join(lines) + "\n"


def _slug(name: str) -> str:
    return "component-" + "".join(c if c.isalnum() else "-" for c in name.lower())
