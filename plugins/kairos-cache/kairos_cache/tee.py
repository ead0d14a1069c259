"""Stream a response body to the client while keeping a copy of it, up to a size limit."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable


async def tee_body(
    body: AsyncIterator[bytes],
    limit: int,
    expected: int | None,
    keep: Callable[[bytes], Awaitable[None]],
    give_up: Callable[[], None],
    stop_when_too_large: bool = False,
) -> AsyncIterator[bytes]:
    """Yield `body` unchanged; on complete success call `keep(copy)`, else `give_up()` once.

    The copy is dropped as soon as it would exceed `limit` (the rest only streams), and a body
    shorter than its announced `expected` length is never kept.
    """
    chunks: list[bytes] = []
    size = 0
    collecting = True
    complete = False
    try:
        async for chunk in body:
            if collecting:
                size += len(chunk)
                if size > limit:
                    collecting = False
                    chunks = []
                    give_up()
                    if stop_when_too_large:
                        return
                else:
                    chunks.append(chunk)
            yield chunk
        complete = True
    finally:
        aclose = getattr(body, "aclose", None)
        if aclose is not None:
            await aclose()
        if collecting:
            if complete and (expected is None or expected == size):
                await keep(b"".join(chunks))
            else:
                give_up()
