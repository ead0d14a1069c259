"""Fixtures for the cache tests: a scriptable origin, a fake clock, a gateway with the cache."""

from __future__ import annotations

import collections
import email.utils
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from kairos_cache import CachePlugin
from multidict import CIMultiDict

from kairos_core.testing import Backend, RunningGateway

OriginHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FakeClock:
    """Wall-clock seconds that only move when a test says so."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def http_date(self) -> str:
        return email.utils.formatdate(self.now, usegmt=True)


class Origin:
    """A real backend whose answer per path a test scripts; counts what it receives."""

    def __init__(self) -> None:
        self.handlers: dict[str, OriginHandler] = {}
        self.hits: collections.Counter[str] = collections.Counter()
        self.requests: list[web.Request] = []
        self.backend: Backend | None = None

    @property
    def url(self) -> str:
        assert self.backend is not None
        return self.backend.url

    def route(self, path: str) -> Callable[[OriginHandler], OriginHandler]:
        def register(handler: OriginHandler) -> OriginHandler:
            self.handlers[path] = handler
            return handler

        return register

    def counting(self, path: str, headers: dict[str, str], clock: FakeClock | None = None) -> None:
        """Serve `n=<hit count>` at `path` with `headers` (and a Date from `clock`)."""

        async def handler(request: web.Request) -> web.Response:
            extra = {"Date": clock.http_date()} if clock is not None else {}
            return web.Response(text=f"n={self.hits[path]}", headers={**headers, **extra})

        self.handlers[path] = handler

    def app(self) -> web.Application:
        async def dispatch(request: web.Request) -> web.StreamResponse:
            self.hits[request.path] += 1
            self.requests.append(request)
            handler = self.handlers.get(request.path)
            if handler is None:
                return web.Response(status=404, text="no such origin path")
            return await handler(request)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", dispatch)
        return app


Fetch = Callable[..., Awaitable[tuple[int, CIMultiDict[str], str]]]


@pytest.fixture
def fetch(http: aiohttp.ClientSession) -> Fetch:
    """`status, headers, text = await fetch(url, method="GET", headers=...)`."""

    async def run(
        url: str, method: str = "GET", **kwargs: Any
    ) -> tuple[int, CIMultiDict[str], str]:
        async with http.request(method, url, **kwargs) as response:
            return response.status, CIMultiDict(response.headers), await response.text()

    return run


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest_asyncio.fixture
async def origin(backend_factory: Any) -> Origin:
    found = Origin()
    found.backend = await backend_factory(found.app())
    return found


def cache_config(
    origin_url: str, cache: dict[str, Any] | None = None, **route: Any
) -> dict[str, Any]:
    """A one-route gateway config with the cache on that route."""
    return {
        "routes": [
            {
                "name": "main",
                "prefix": "/",
                "upstream": {"backends": [{"url": origin_url}]},
                "plugins": [{"name": "cache", "config": cache or {}}],
                **route,
            }
        ]
    }


CacheGateway = Callable[..., Awaitable[RunningGateway]]


@pytest.fixture
def cache_gateway(kairos_gateway: Any, origin: Origin, clock: FakeClock) -> CacheGateway:
    """`await cache_gateway({cache config})`: a gateway in front of `origin`, on `clock`."""

    async def start(cache: dict[str, Any] | None = None, **route: Any) -> RunningGateway:
        gateway: RunningGateway = await kairos_gateway(
            cache_config(origin.url, cache, **route), plugins=[CachePlugin(clock=clock)]
        )
        return gateway

    return start
