"""Fixtures for the cors tests: a tiny authenticator plugin that requires `X-Test-User`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from kairos_core import (
    AuthFailure,
    AuthPlugin,
    BuildContext,
    Consumer,
    NoConfig,
    RequestContext,
    hookimpl,
)


class HeaderAuthenticator:
    """Accepts any request with `X-Test-User`; refuses the others with 401."""

    challenge = "Test"

    async def authenticate(self, ctx: RequestContext) -> Consumer | None:
        user = ctx.request.headers.get("X-Test-User")
        if user is None:
            raise AuthFailure("send X-Test-User")
        return Consumer(user, configured=False)


class HeaderAuthPlugin:
    """Registers the `test-user` authenticator."""

    @hookimpl
    def register_authenticators(self, register: Callable[[AuthPlugin[Any]], None]) -> None:
        def build(config: NoConfig, context: BuildContext) -> HeaderAuthenticator:
            return HeaderAuthenticator()

        register(AuthPlugin(name="test-user", build=build))


@pytest.fixture
def header_auth() -> HeaderAuthPlugin:
    """The test authenticator plugin, to pass in `plugins=[...]`."""
    return HeaderAuthPlugin()
