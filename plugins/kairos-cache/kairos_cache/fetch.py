"""Going to the backend for the cache: coalesced, conditional when possible, stored on the way back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from typing import Any

from kairos_cache.entry import CachedResponse, Policy, VaryMarker, evaluate, refreshed
from kairos_cache.keys import variant_key
from kairos_cache.metrics import RouteCounters
from kairos_cache.serve import entry_response, mark
from kairos_cache.stores import CacheStore, Item, StoreUnavailable
from kairos_cache.tee import tee_body
from kairos_core import Handler, RequestContext, Response

log = logging.getLogger("kairos.cache")

Shared = tuple[str, CachedResponse] | None
"""What a coalesced fetch hands its followers: the stored key and entry, or None (fetch yourself)."""

_CONDITIONALS = ("If-None-Match", "If-Modified-Since")
_SERVER_ERRORS = frozenset({500, 502, 503, 504})


@dataclass(slots=True)
class Lookup:
    """One request's place in the cache: its keys and what is stored there."""

    primary: str
    key: str
    entry: CachedResponse | None
    shown: str | None = None
    """The key reported in X-Cache-Key (None unless `expose_key`)."""


class Fetcher:
    """Fetches for one cache instance; concurrent fetches of one key share a single request."""

    def __init__(
        self,
        store: CacheStore,
        policy: Policy,
        clock: Callable[[], float],
        max_object_size: int,
        coalesce: bool,
    ) -> None:
        self.store = store
        self.policy = policy
        self.clock = clock
        self.limit = max_object_size
        self.coalesce = coalesce
        self.flights: dict[str, asyncio.Future[Shared]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def fetch(
        self,
        ctx: RequestContext,
        call_next: Handler,
        found: Lookup,
        counters: RouteCounters | None,
        *,
        lead: bool = True,
        no_store: bool = False,
    ) -> Response:
        """Ask the backend (conditionally when the stale entry has validators) and store the answer.

        `counters` is None for background refreshes, which no client sees.
        """
        flight: asyncio.Future[Shared] | None = None
        one_at_a_time = self.coalesce or counters is None  # background refreshes never pile up
        if lead and one_at_a_time and found.key not in self.flights:
            flight = asyncio.get_running_loop().create_future()
            self.flights[found.key] = flight

        def finish(shared: Shared) -> None:
            if flight is not None and not flight.done():
                flight.set_result(shared)
                if self.flights.get(found.key) is flight:
                    del self.flights[found.key]

        stale = found.entry
        handed_over = False
        try:
            if stale is not None and stale.has_validator:
                _conditional(ctx, stale)
            request_time = self.clock()
            try:
                response = await call_next(ctx)
            except Exception:
                if stale is not None and self.usable_on_error(stale):
                    log.warning("route %s: backend failed, serving a stale entry", ctx.route.name)
                    return self._serve(stale, ctx, "STALE", found, counters)
                raise
            response_time = self.clock()
            status = response.status
            if status == 304 and stale is not None and stale.has_validator:
                await response.close()
                fresh = refreshed(stale, response.headers, request_time, response_time, self.policy)
                if fresh is None:
                    await self.forget(found.primary, counters)
                    fresh = stale
                else:
                    finish((await self.put(found.primary, fresh, ctx, counters), fresh))
                return self._serve(fresh, ctx, "HIT", found, counters)
            if status in _SERVER_ERRORS and stale is not None and self.usable_on_error(stale):
                await response.close()
                return self._serve(stale, ctx, "STALE", found, counters)
            if counters is not None:
                counters.miss.inc()
            if not no_store and status != 304:
                meta = evaluate(status, response.headers, request_time, response_time, self.policy)
                if meta is not None:
                    handed_over = await self._store_body(
                        response, meta, found, ctx, finish, counters
                    )
            return mark(response, "MISS", found.shown)
        finally:
            if not handed_over:
                finish(None)

    async def _store_body(
        self,
        response: Response,
        meta: CachedResponse,
        found: Lookup,
        ctx: RequestContext,
        finish: Callable[[Shared], None],
        counters: RouteCounters | None,
    ) -> bool:
        """Store the body now or once it has streamed; True when the tee now calls `finish`."""
        body = response.body
        if isinstance(body, bytes):
            if len(body) <= self.limit:
                entry = replace(meta, body=body)
                finish((await self.put(found.primary, entry, ctx, counters), entry))
            return False
        length = response.headers.get("Content-Length")
        expected = int(length) if length is not None and length.isdigit() else None
        if expected is not None and expected > self.limit:
            return False  # streams through untouched, never buffered

        async def keep(data: bytes) -> None:
            entry = replace(meta, body=data)
            finish((await self.put(found.primary, entry, ctx, counters), entry))

        response.body = tee_body(
            body,
            self.limit,
            expected,
            keep,
            lambda: finish(None),
            stop_when_too_large=counters is None,
        )
        ctx.add_cleanup(lambda: finish(None))  # followers never wait on a body nobody reads
        return True

    def _serve(
        self,
        entry: CachedResponse,
        ctx: RequestContext,
        state: str,
        found: Lookup,
        counters: RouteCounters | None,
    ) -> Response:
        if counters is not None:
            (counters.hit if state == "HIT" else counters.stale).inc()
        return entry_response(
            entry, self.clock(), state, request_headers=ctx.request.headers, key=found.shown
        )

    def usable_on_error(self, entry: CachedResponse) -> bool:
        """True while stale-if-error still allows serving `entry`."""
        return entry.age(self.clock()) - entry.freshness < entry.stale_if_error

    async def put(
        self,
        primary: str,
        entry: CachedResponse,
        ctx: RequestContext,
        counters: RouteCounters | None,
    ) -> str:
        """Store `entry` under the key its Vary selects (with a marker at `primary`); return it."""
        items: list[tuple[str, Item, float]]
        ttl = entry.storage_ttl
        if entry.vary:
            key = variant_key(primary, entry.vary, ctx.request.headers)
            items = [(primary, VaryMarker(entry.vary), ttl), (key, entry, ttl)]
        else:
            key = primary
            items = [(primary, entry, ttl)]
        try:
            written = await self.store.put(items)
        except Exception as exc:
            if not isinstance(exc, StoreUnavailable):
                log.exception("cache: storing %r failed", primary)
            if counters is not None:
                counters.store_errors.inc()
        else:
            if counters is not None:
                counters.stored_bytes.inc(written)
        return key

    async def forget(self, key: str, counters: RouteCounters | None) -> None:
        """Delete `key`, counting (not raising) a store failure."""
        try:
            await self.store.delete(key)
        except StoreUnavailable:
            if counters is not None:
                counters.store_errors.inc()

    def refresh_in_background(self, ctx: RequestContext, call_next: Handler, found: Lookup) -> None:
        """Revalidate a stale entry without making the client wait (stale-while-revalidate)."""
        if found.key in self.flights:
            return  # one refresh at a time
        copy = RequestContext(
            ctx.request,
            ctx.route,
            ctx.raw_params,
            ctx.request_id,
            ctx.client_ip,
            ctx.scheme,
            ctx.host,
            ctx.upstream_path,
            ctx.query_string,
            ctx.headers.copy(),
            ctx.started,
        )
        copy.consumer, copy.claims = ctx.consumer, ctx.claims
        self._spawn(self._refresh(copy, call_next, found))

    async def _refresh(self, ctx: RequestContext, call_next: Handler, found: Lookup) -> None:
        try:
            response = await self.fetch(ctx, call_next, found, None)
            try:
                if not isinstance(response.body, bytes):
                    async for _chunk in response.body:
                        pass
            finally:
                await response.close()
        except Exception as exc:
            log.warning("route %s: background revalidation failed: %s", ctx.route.name, exc)
        finally:
            await ctx.run_cleanups()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Give background refreshes a moment to finish, then cancel the rest."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2.0)
            for task in list(self._tasks):
                task.cancel()


def _conditional(ctx: RequestContext, stale: CachedResponse) -> None:
    """Replace the client's validators with the stored entry's (RFC 9111 4.3.1)."""
    headers = ctx.headers
    for name in _CONDITIONALS:
        headers.popall(name, None)
    if stale.etag is not None:
        headers["If-None-Match"] = stale.etag
    if stale.last_modified is not None:
        headers["If-Modified-Since"] = stale.last_modified
