"""Check a candidate configuration the way a reload would, without applying it."""

from __future__ import annotations

from typing import Any

from kairos_core.admin.models import Problem, ValidationResult
from kairos_core.config.errors import ConfigError, format_loc
from kairos_core.config.loader import load_config_text
from kairos_core.gateway import Gateway
from kairos_core.plugins import PluginError, PluginHost
from kairos_core.tls import TLSConfigError


def validate_candidate(text: str, host: PluginHost) -> dict[str, Any]:
    """Parse, validate and build (plugins included) a candidate config; never starts anything."""
    try:
        loaded = load_config_text(text, "<candidate>")
        Gateway(loaded, host=host).prepare(loaded)
    except ConfigError as exc:
        problems = [
            Problem(loc=format_loc(p.loc), message=p.message, line=p.line) for p in exc.problems
        ]
        return ValidationResult(valid=False, problems=problems).model_dump()
    except (PluginError, TLSConfigError) as exc:
        return ValidationResult(
            valid=False, problems=[Problem(loc="plugins", message=str(exc))]
        ).model_dump()
    return ValidationResult(valid=True, warnings=list(loaded.warnings)).model_dump()
