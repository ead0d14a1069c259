"""kairos-mtls: authenticate clients by their TLS client certificate (subject CN or a SAN)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kairos_core import AuthPlugin, hookimpl
from kairos_mtls.authenticator import MtlsAuthenticator, MtlsConfig, build_authenticator
from kairos_mtls.identity import CertificateFacts, read_certificate

PRIORITY = 30
"""Default order among a route's authenticators (higher is tried first; this one is cheap)."""


@hookimpl
def register_authenticators(register: Callable[[AuthPlugin[Any]], None]) -> None:
    """Register the `mtls` authenticator."""
    register(
        AuthPlugin(
            name="mtls",
            build=build_authenticator,
            config_model=MtlsConfig,
            priority=PRIORITY,
            description="TLS client certificates (subject CN or SAN) mapped to consumers",
        )
    )


__all__ = [
    "CertificateFacts",
    "MtlsAuthenticator",
    "MtlsConfig",
    "build_authenticator",
    "read_certificate",
]
