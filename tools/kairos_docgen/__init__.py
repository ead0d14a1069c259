"""Documentation generators: reference pages built from the code on every `mkdocs build`."""

from __future__ import annotations

from pathlib import Path

from kairos_docgen.admin_ref import admin_page
from kairos_docgen.cli_ref import cli_page
from kairos_docgen.config_ref import config_page
from kairos_docgen.hooks_ref import hooks_page
from kairos_docgen.plugins_ref import load_registry, plugins_page


def generate_pages(docs_dir: Path) -> dict[str, str]:
    """Generated pages by their path under `docs/`."""
    from kairos_cli.main import cli

    builtin = set(cli.commands)  # before plugin commands are added by listing them
    installed, _host, registry = load_registry()
    return {
        "reference/configuration.md": config_page(),
        "reference/hooks.md": hooks_page(),
        "reference/cli.md": cli_page(cli, builtin=builtin),
        "reference/admin-api.md": admin_page(registry.admin_routes),
        "reference/plugins.md": plugins_page(docs_dir, installed, registry),
    }
