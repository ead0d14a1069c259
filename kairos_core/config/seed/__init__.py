"""The seed system's `config.json` format: detected on load and converted to the native one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from kairos_core.config.errors import ConfigError, Loc, problems_from_validation
from kairos_core.config.models import GatewayConfig
from kairos_core.config.seed.convert import SeedConversion, SeedConverter
from kairos_core.config.seed.models import SeedConfig

SEED_KEYS = ("routers", "jwt", "rate_limit", "ai")
"""Top-level keys that only the seed format has."""
UNKNOWN_SEED_FIELD = (
    "unknown field in the seed config.json format (the seed system ignored it silently; "
    "check the spelling, see docs/migrating-from-seed.md)"
)

__all__ = ["SEED_KEYS", "SeedConversion", "convert_seed", "is_seed_config"]


def is_seed_config(
    data: Mapping[str, Any], source: str = "<config>", lines: Mapping[Loc, int] | None = None
) -> bool:
    """Whether `data` is in the seed format; a file mixing both formats is a ConfigError."""
    seed = [key for key in data if key in SEED_KEYS]
    if not seed:
        return False
    native = [key for key in data if key in GatewayConfig.model_fields and key != "version"]
    if native:
        raise ConfigError.single(
            source,
            (seed[0],),
            f"`{seed[0]}` belongs to the seed system's config.json format, but this file also "
            f"uses Kairos's own format (`{native[0]}`): a file is one or the other (convert a "
            "seed file with `kairos config migrate`)",
            (lines or {}).get((seed[0],)),
        )
    return True


def convert_seed(
    data: Mapping[str, Any], source: str = "<config>", lines: Mapping[Loc, int] | None = None
) -> SeedConversion:
    """Validate seed-format data and convert it to native config data (not yet interpolated)."""
    lines = lines or {}
    try:
        seed = SeedConfig.model_validate(data)
    except ValidationError as exc:
        problems = problems_from_validation(exc, (), lines)
        for index, error in enumerate(exc.errors(include_url=False)):
            if error["type"] == "extra_forbidden":
                problem = problems[index]
                problems[index] = type(problem)(problem.loc, UNKNOWN_SEED_FIELD, problem.line)
        raise ConfigError(source, problems) from None
    return SeedConverter(seed, source, lines).run()
