"""The request body as an async stream, bounded and timed (kept interpreted: mypyc lacks
async generators, and `context.py`, which calls these, is compiled)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kairos_core.context import RequestContext


class RequestBodyTooLarge(Exception):
    """The client sent more body bytes than the route allows."""


async def stream_all(ctx: RequestContext) -> AsyncIterator[bytes]:
    """Every body byte for the upstream: the bytes a stage peeked at, then the rest."""
    ctx.body_started = True
    prefix = ctx.body_prefix
    try:
        if prefix:
            if len(prefix) > ctx.max_body_size:  # a peek already went too far
                raise RequestBodyTooLarge(ctx.max_body_size)
            yield prefix
        async for chunk in stream_rest(ctx, len(prefix)):
            yield chunk
    except (RequestBodyTooLarge, TimeoutError, ConnectionError) as exc:
        ctx.body_failure = exc
        raise


async def stream_rest(ctx: RequestContext, already: int) -> AsyncIterator[bytes]:
    """The body bytes not read yet; counts them in `ctx.bytes_in` and enforces the limit."""
    await ctx.send_continue()
    content = ctx.request.content
    limit = ctx.max_body_size
    timeout = ctx.route.timeouts.read
    total = already
    while True:
        async with asyncio.timeout(timeout):
            chunk = await content.readany()
        if not chunk:
            return
        total += len(chunk)
        ctx.bytes_in = total
        if total > limit:
            raise RequestBodyTooLarge(limit)
        yield chunk
