"""`ctx.peek_body`: peeked bytes are replayed upstream; a peek past the route's limit is a 413."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from kairos_core import (
    BuildContext,
    Handler,
    Middleware,
    NoConfig,
    RequestBodyTooLarge,
    RequestContext,
    Response,
    StagePlugin,
    hookimpl,
)


class Peeker:
    """Registers `peek`: a stage that peeks at 4096 body bytes and remembers what it saw."""

    def __init__(self) -> None:
        self.seen: list[bytes | str] = []

    @hookimpl
    def register_transformers(self, register: Callable[[StagePlugin[Any]], None]) -> None:
        def build(config: NoConfig, context: BuildContext) -> Middleware:
            async def peek(ctx: RequestContext, call_next: Handler) -> Response:
                try:
                    self.seen.append(await ctx.peek_body(4096))
                except RequestBodyTooLarge:
                    self.seen.append("too large")
                return await call_next(ctx)

            return peek

        register(StagePlugin(name="peek", build=build))


def config(url: str, **route: Any) -> dict[str, Any]:
    return {
        "routes": [
            {"prefix": "/", "upstream": {"backends": [{"url": url}]}, "plugins": [{"name": "peek"}]}
            | route
        ]
    }


async def chunked(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_peeked_bytes_reach_the_backend_with_the_rest(
    kairos_gateway: Any, echo_backend: Any, http: Any
) -> None:
    peeker = Peeker()
    gw = await kairos_gateway(config(echo_backend.url), plugins=[peeker])
    body = [b"a" * 3000, b"b" * 3000, b"c" * 3000]
    async with http.post(gw.url + "/p", data=chunked(*body)) as response:
        assert response.status == 200
    assert peeker.seen == [(b"a" * 3000 + b"b" * 3000)[:4096]]
    assert echo_backend.records[-1].body == b"".join(body)


async def test_a_peek_past_the_route_limit_is_413_and_nothing_is_forwarded(
    kairos_gateway: Any, echo_backend: Any, http: Any
) -> None:
    peeker = Peeker()
    gw = await kairos_gateway(config(echo_backend.url, max_body_size=100), plugins=[peeker])
    async with http.post(gw.url + "/p", data=chunked(b"x" * 1000)) as response:
        assert response.status == 413
        assert (await response.json())["type"] == "body_too_large"
    assert peeker.seen == ["too large"]
    assert echo_backend.records == []
