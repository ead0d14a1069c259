"""The configuration reference, generated from the pydantic models in `kairos_core.config.models`."""

from __future__ import annotations

import yaml

from kairos_core.config.models import GatewayConfig
from kairos_docgen.models import model_reference

_INTRO = """\
# Configuration reference

Generated from the pydantic models in `kairos_core/config/models.py` on every docs build, so it
always matches the code. A configuration is one YAML or JSON file (`kairos serve --config
FILE`, `kairos validate FILE`). Every section is optional except what a route needs; unknown
fields are errors, and an error names the file, the line and the exact field
(`gateway.yaml:12: routes[0].upstream: unknown upstream 'user'`).

Any string value may use `${VAR}` (the environment variable, which must be set) or
`${VAR:-default}`; `$$` is a literal `$`. Use this for secrets such as `admin.token`.

Plugin entries (`plugins:` at the top level, on a route or on a consumer) carry a `config`
mapping that the plugin's own model validates: see [installed plugins](plugins.md) for the
settings of every plugin installed where these docs were built, and each plugin's page.
"""


def defaults_yaml() -> str:
    """Every default value, as a YAML document."""
    data = GatewayConfig().model_dump(mode="json")
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip()


def config_page() -> str:
    """The whole configuration reference page."""
    return (
        f"{_INTRO}\n"
        "## Defaults\n\n"
        "An empty file means exactly this (no routes yet):\n\n"
        f"```yaml\n{defaults_yaml()}\n```\n\n"
        "## Sections\n\n"
        "Each table lists a section's fields. The top level is `GatewayConfig`.\n\n"
        f"{model_reference(GatewayConfig, level=3)}"
    )
