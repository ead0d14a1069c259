"""pytest fixtures for Kairos and plugin authors (registered under the `pytest11` entry point).

async def test_my_plugin(kairos_gateway, echo_backend, http):
    gw = await kairos_gateway({"routes": [{"path": "/x", "upstream": {"backends": [{"url": echo_backend.url}]},
                                           "plugins": [{"name": "my-plugin"}]}]}, plugins=[my_plugin])
    async with http.get(gw.url + "/x") as response:
        assert response.status == 200
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from kairos_core.testing.backends import Backend, echo_app, start_backend
from kairos_core.testing.harness import RunningGateway, running_gateway
from kairos_core.testing.services import redis_available, require_service

GatewayFactory = Callable[..., Awaitable[RunningGateway]]
BackendFactory = Callable[..., Awaitable[Backend]]


@pytest_asyncio.fixture
async def kairos_gateway() -> AsyncIterator[GatewayFactory]:
    """Start gateways: `await kairos_gateway(config, plugins=[...])`; stopped after the test."""
    async with AsyncExitStack() as stack:

        async def start(
            config: Any, plugins: Iterable[object] = (), **kwargs: Any
        ) -> RunningGateway:
            return await stack.enter_async_context(running_gateway(config, plugins, **kwargs))

        yield start


@pytest_asyncio.fixture
async def backend_factory() -> AsyncIterator[BackendFactory]:
    """Start aiohttp apps as backends: `await backend_factory(app)`; stopped after the test."""
    async with AsyncExitStack() as stack:

        async def start(app: web.Application | None = None, **kwargs: Any) -> Backend:
            return await stack.enter_async_context(start_backend(app or echo_app(), **kwargs))

        yield start


@pytest_asyncio.fixture
async def echo_backend(backend_factory: BackendFactory) -> Backend:
    """A started echo backend; `echo_backend.records` lists what it received."""
    return await backend_factory(echo_app())


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """An aiohttp client session with no automatic decompression or cookies."""
    async with aiohttp.ClientSession(
        auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()
    ) as session:
        yield session


@pytest.fixture
def redis_url() -> str:
    """The local Redis URL; skips (or fails under KAIROS_REQUIRE_SERVICES=1) when it is down."""
    require_service("Redis on 127.0.0.1:6379", redis_available(), "start redis-server")
    return "redis://127.0.0.1:6379/0"
