"""Fixtures for the otel tests: OTLP receivers, a gateway config, a tiny authenticator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest
import pytest_asyncio
from kairos_otel.testing import OtlpReceiver, start_receiver

from kairos_core import (
    AuthPlugin,
    BuildContext,
    Consumer,
    NoConfig,
    RequestContext,
    hookimpl,
)

ReceiverFactory = Callable[..., Awaitable[OtlpReceiver]]


@pytest_asyncio.fixture
async def receiver_factory() -> AsyncIterator[ReceiverFactory]:
    """Start OTLP receivers: `await receiver_factory(port=0)`; stopped after the test."""
    async with AsyncExitStack() as stack:

        async def start(port: int = 0, receiver: OtlpReceiver | None = None) -> OtlpReceiver:
            return await stack.enter_async_context(start_receiver(port, receiver))

        yield start


@pytest_asyncio.fixture
async def receiver(receiver_factory: ReceiverFactory) -> OtlpReceiver:
    """A started OTLP/HTTP receiver on a free loopback port."""
    return await receiver_factory()


def _gateway_config(
    backend_url: str, endpoint: str, route: str = "api", **settings: Any
) -> dict[str, Any]:
    """One route to `backend_url` with a global `otel` entry exporting to `endpoint`."""
    return {
        "routes": [
            {"name": route, "prefix": "/", "upstream": {"backends": [{"url": backend_url}]}}
        ],
        "plugins": [
            {"name": "otel", "config": {"endpoint": endpoint, "schedule_delay": 0.05, **settings}}
        ],
    }


@pytest.fixture
def otel_gateway_config() -> Callable[..., dict[str, Any]]:
    """`otel_gateway_config(backend_url, endpoint, **otel_settings)`: a config dict."""
    return _gateway_config


class HeaderAuthenticator:
    """Accepts the consumer named in `X-Test-User`; no header: anonymous (None)."""

    challenge = "Test"

    async def authenticate(self, ctx: RequestContext) -> Consumer | None:
        """The consumer named by the header, if any."""
        user = ctx.request.headers.get("X-Test-User")
        return Consumer(user, configured=False) if user else None


class HeaderAuthPlugin:
    """Registers the `test-user` authenticator."""

    @hookimpl
    def register_authenticators(self, register: Callable[[AuthPlugin[Any]], None]) -> None:
        """Register `test-user`."""

        def build(config: NoConfig, context: BuildContext) -> HeaderAuthenticator:
            return HeaderAuthenticator()

        register(AuthPlugin(name="test-user", build=build))


@pytest.fixture
def header_auth() -> HeaderAuthPlugin:
    """A plugin object with a `test-user` authenticator (consumer from `X-Test-User`)."""
    return HeaderAuthPlugin()
