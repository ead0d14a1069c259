"""Fixtures for the transform tests: a test authenticator (consumer and claims) and backends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from kairos_core import (
    AuthFailure,
    AuthPlugin,
    BuildContext,
    Consumer,
    NoConfig,
    RequestContext,
    hookimpl,
)
from kairos_core.testing import Backend

CLAIMS = {"sub": "user-7", "tier": "gold", "org": {"id": 42, "name": "Acme"}, "admin": True}


class IdentityAuthenticator:
    """`Authorization: Test NAME` -> that consumer (with its configured metadata) and CLAIMS."""

    challenge = "Test"

    def __init__(self, consumers: Any) -> None:
        self.consumers = consumers

    async def authenticate(self, ctx: RequestContext) -> Consumer | None:
        value = ctx.request.headers.get("Authorization", "")
        if not value.startswith("Test "):
            return None
        name = value[5:]
        if name == "bad":
            raise AuthFailure("bad test identity")
        ctx.claims = {**CLAIMS, "sub": name}
        return self.consumers.get(name) or Consumer(name, configured=False)


class IdentityPlugin:
    """Registers the `test-identity` authenticator (stands in for the JWT plugin)."""

    @hookimpl
    def register_authenticators(self, register: Callable[[AuthPlugin[Any]], None]) -> None:
        def build(config: NoConfig, context: BuildContext) -> IdentityAuthenticator:
            return IdentityAuthenticator(context.services.consumers)

        register(AuthPlugin(name="test-identity", build=build))


@pytest.fixture
def identity() -> IdentityPlugin:
    """The test authenticator plugin, for `plugins=[...]`."""
    return IdentityPlugin()


Serve = Callable[..., Awaitable[Backend]]


@pytest.fixture
def serve(backend_factory: Any) -> Serve:
    """Start a backend answering every request with fixed bytes, headers and status."""

    async def start(
        body: bytes, headers: dict[str, str] | None = None, status: int = 200
    ) -> Backend:
        seen: list[web.Request] = []

        async def handler(request: web.Request) -> web.Response:
            seen.append(request)
            await request.read()
            return web.Response(body=body, status=status, headers=headers or {})

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        return await backend_factory(app)  # type: ignore[no-any-return]

    return start


def transform_route(backend: Backend, config: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """(Not a fixture) a route with the transform plugin; see `route` fixture."""
    return {
        "name": "t",
        "prefix": "/",
        "upstream": {"backends": [{"url": backend.url}]},
        "plugins": [{"name": "transform", "config": config}],
        **extra,
    }


@pytest.fixture
def route() -> Callable[..., dict[str, Any]]:
    """Build a gateway config with one transform route: `route(backend, config, **extra)`."""

    def make(backend: Backend, config: dict[str, Any], **extra: Any) -> dict[str, Any]:
        top = extra.pop("top", {})
        return {"routes": [transform_route(backend, config, **extra)], **top}

    return make


class RawBackend:
    """A bare HTTP/1.1 server that keeps each request's head and body exactly as sent."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.url = ""
        self._server: asyncio.Server | None = None

    async def start(self) -> RawBackend:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        headers = {}
        for line in head.decode("latin-1").split("\r\n")[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests.append((headers, body))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest_asyncio.fixture
async def raw_backend() -> AsyncIterator[RawBackend]:
    """A started RawBackend (request bodies are not decoded, unlike an aiohttp backend)."""
    backend = await RawBackend().start()
    yield backend
    await backend.stop()
