"""Fuzz target: config text (YAML or JSON) -> a validated config or a ConfigError."""

from __future__ import annotations

from kairos_core.config.errors import ConfigError
from kairos_core.config.loader import load_config_text

SOURCE = "fuzz.yaml"


def test_one_input(data: bytes) -> None:
    """Load `data` as a config file; only ConfigError (naming this file) may come out."""
    text = data.decode("utf-8", "replace")
    try:
        load_config_text(text, SOURCE, env={"HOME": "/home/fuzz"})
    except ConfigError as exc:
        assert exc.source == SOURCE and exc.problems
        str(exc)
