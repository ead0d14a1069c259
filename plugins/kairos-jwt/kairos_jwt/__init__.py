"""kairos-jwt: JWT bearer authentication with pinned keys, JWKS rotation and claim rules."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from kairos_core import AuthPlugin, hookimpl
from kairos_jwt import errors
from kairos_jwt.authenticator import JwtAuthenticator, build_authenticator, build_keyring
from kairos_jwt.claims import Clock
from kairos_jwt.config import JwtConfig
from kairos_jwt.errors import TokenRejected
from kairos_jwt.verifier import TokenVerifier

PRIORITY = 20
"""Default order among a route's authenticators (higher is tried first)."""


def auth_plugin(clock: Clock = time.time) -> AuthPlugin[JwtConfig]:
    """The `jwt` component; tests pass a fixed `clock` instead of freezing the system time."""
    return AuthPlugin(
        name="jwt",
        build=functools.partial(build_authenticator, clock=clock),
        config_model=JwtConfig,
        priority=PRIORITY,
        description="JWT bearer tokens: HS/RS/PS/ES/EdDSA, JWKS, claim checks and rules",
    )


class JwtPlugin:
    """A plugin object registering `jwt` with a chosen clock (`plugins=[JwtPlugin(clock)]`)."""

    def __init__(self, clock: Clock = time.time) -> None:
        self.clock = clock

    @hookimpl
    def register_authenticators(self, register: Callable[[AuthPlugin[Any]], None]) -> None:
        """Register `jwt` with this object's clock."""
        register(auth_plugin(self.clock))


@hookimpl
def register_authenticators(register: Callable[[AuthPlugin[Any]], None]) -> None:
    """Register the `jwt` authenticator."""
    register(auth_plugin())


__all__ = [
    "JwtAuthenticator",
    "JwtConfig",
    "JwtPlugin",
    "TokenRejected",
    "TokenVerifier",
    "auth_plugin",
    "build_authenticator",
    "build_keyring",
    "errors",
]
