"""Configuration: models, loading, interpolation and error reporting."""

from kairos_core.config.errors import ConfigError, ConfigProblem
from kairos_core.config.loader import LoadedConfig, load_config, load_config_text, validate_config
from kairos_core.config.models import GatewayConfig

__all__ = [
    "ConfigError",
    "ConfigProblem",
    "GatewayConfig",
    "LoadedConfig",
    "load_config",
    "load_config_text",
    "validate_config",
]
