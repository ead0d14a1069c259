"""The cache stage: look up, serve fresh or stale, revalidate, coalesce misses, store on the way back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from typing import Any

from kairos_cache.directives import parse_cache_control, seconds
from kairos_cache.entry import CachedResponse, Policy, VaryMarker, evaluate, refreshed
from kairos_cache.keys import PurgeFilter, variant_key
from kairos_cache.metrics import CacheMetrics, RouteCounters
from kairos_cache.serve import entry_response, mark
from kairos_cache.stores import CacheStore, Item, StoreUnavailable
from kairos_cache.tee import tee_body
from kairos_core import Handler, RequestContext, Response, error_response

log = logging.getLogger("kairos.cache")

Clock = Callable[[], float]
Shared = tuple[str, CachedResponse] | None
"""What a coalesced fetch hands its followers: the stored key and entry, or None (fetch yourself)."""

_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_CONDITIONALS = ("If-None-Match", "If-Modified-Since")
_SERVER_ERRORS = frozenset({500, 502, 503, 504})


@dataclass(slots=True)
class ClientDirectives:
    """The parts of a request's Cache-Control the cache acts on."""

    max_age: float | None = None
    """Oldest acceptable age; -1 for no-cache (always revalidate)."""
    no_store: bool = False
    only_if_cached: bool = False


_NO_DIRECTIVES = ClientDirectives()


@dataclass(slots=True)
class Lookup:
    """One request's place in the cache: its keys and what is stored there."""

    primary: str
    key: str
    entry: CachedResponse | None


class ResponseCache:
    """One configured `cache` entry: its store, policy and in-flight fetches."""

    def __init__(
        self,
        *,
        store: CacheStore,
        policy: Policy,
        clock: Clock,
        metrics: CacheMetrics,
        key: Callable[[RequestContext, str], str],
        max_object_size: int,
        allow_credentials: bool,
        request_directives: bool,
        invalidate_on_unsafe: bool,
        coalesce: bool,
        expose_key: bool,
    ) -> None:
        self.store = store
        self.policy = policy
        self.clock = clock
        self.metrics = metrics
        self._key = key
        self._limit = max_object_size
        self._allow_credentials = allow_credentials
        self._request_directives = request_directives
        self._invalidate = invalidate_on_unsafe
        self._coalesce = coalesce
        self._expose = expose_key
        self._flights: dict[str, asyncio.Future[Shared]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # -- the stage ----------------------------------------------------------------------------

    async def __call__(self, ctx: RequestContext, call_next: Handler) -> Response:
        """Answer from the cache when allowed, else fetch through `call_next` and store."""
        method = ctx.method
        if method != "GET" and method != "HEAD":
            if self._invalidate and method in _UNSAFE:
                return await self._invalidating(ctx, call_next)
            return await call_next(ctx)
        counters = self.metrics.route(ctx.route.name)
        consumer = self._consumer(ctx)
        if consumer is None or "Range" in ctx.headers or ctx.request.body_exists:
            counters.bypass.inc()
            return mark(await call_next(ctx), "BYPASS")
        primary = self._key(ctx, consumer)
        shown = primary if self._expose else None
        try:
            found = await self._lookup(primary, ctx)
        except StoreUnavailable:
            counters.store_errors.inc()
            counters.bypass.inc()
            return mark(await call_next(ctx), "BYPASS", shown)
        directives = self._directives(ctx)
        entry = found.entry
        now = self.clock()
        head = method == "HEAD"
        if entry is not None:
            age = entry.age(now)
            limit = directives.max_age
            if age < entry.freshness and (limit is None or age <= limit):
                counters.hit.inc()
                return entry_response(
                    entry, now, "HIT", head=head, request_headers=ctx.request.headers, key=shown
                )
            if limit is None and age - entry.freshness < entry.stale_while_revalidate:
                if not head:
                    self._refresh_in_background(ctx, call_next, found)
                counters.stale.inc()
                return entry_response(
                    entry, now, "STALE", head=head, request_headers=ctx.request.headers, key=shown
                )
        if directives.only_if_cached:
            counters.miss.inc()
            return mark(
                error_response(
                    504, "not_cached", "only-if-cached: no usable stored response", ctx.request_id
                ),
                "MISS",
                shown,
            )
        if head:
            counters.miss.inc()
            return mark(await call_next(ctx), "MISS", shown)
        if self._coalesce:
            flight = self._flights.get(found.key)
            if flight is not None:
                shared = await asyncio.shield(flight)
                if shared is not None and self._matches(shared, primary, ctx):
                    counters.hit.inc()
                    return entry_response(
                        shared[1],
                        self.clock(),
                        "HIT",
                        request_headers=ctx.request.headers,
                        key=shown,
                    )
                return await self._fetch(ctx, call_next, found, directives, counters, lead=False)
        return await self._fetch(ctx, call_next, found, directives, counters, lead=True)

    # -- lookups --------------------------------------------------------------------------------

    def _consumer(self, ctx: RequestContext) -> str | None:
        """ "" for anonymous requests, the consumer name when credentials may be cached, else None."""
        headers = ctx.headers
        if ctx.consumer is None and "Authorization" not in headers and "Cookie" not in headers:
            return ""
        if not self._allow_credentials or ctx.consumer is None:
            return None
        return ctx.consumer.name

    async def _lookup(self, primary: str, ctx: RequestContext) -> Lookup:
        item: Item | None = await self.store.get(primary)
        if isinstance(item, VaryMarker):
            key = variant_key(primary, item.names, ctx.request.headers)
            variant = await self.store.get(key)
            if isinstance(variant, CachedResponse) and variant.vary == item.names:
                return Lookup(primary, key, variant)
            return Lookup(primary, key, None)
        if isinstance(item, CachedResponse) and not item.vary:
            return Lookup(primary, primary, item)
        return Lookup(primary, primary, None)

    @staticmethod
    def _matches(shared: tuple[str, CachedResponse], primary: str, ctx: RequestContext) -> bool:
        key, entry = shared
        if not entry.vary:
            return key == primary
        return key == variant_key(primary, entry.vary, ctx.request.headers)

    def _directives(self, ctx: RequestContext) -> ClientDirectives:
        if not self._request_directives:
            return _NO_DIRECTIVES
        values = ctx.request.headers.getall("Cache-Control", ())
        if not values:
            return _NO_DIRECTIVES
        cc = parse_cache_control(values)
        max_age = -1.0 if "no-cache" in cc else seconds(cc, "max-age")
        return ClientDirectives(max_age, "no-store" in cc, "only-if-cached" in cc)

    # -- fetching and storing -------------------------------------------------------------------

    async def _fetch(
        self,
        ctx: RequestContext,
        call_next: Handler,
        found: Lookup,
        directives: ClientDirectives,
        counters: RouteCounters,
        *,
        lead: bool,
        background: bool = False,
    ) -> Response:
        """Ask the backend (conditionally when a stored entry has validators) and store the answer."""
        flight: asyncio.Future[Shared] | None = None
        if lead and self._coalesce and found.key not in self._flights:
            flight = asyncio.get_running_loop().create_future()
            self._flights[found.key] = flight

        def finish(shared: Shared) -> None:
            if flight is not None and not flight.done():
                flight.set_result(shared)
                if self._flights.get(found.key) is flight:
                    del self._flights[found.key]

        shown = found.primary if self._expose else None
        stale = found.entry
        handed_over = False
        try:
            if stale is not None and stale.has_validator:
                self._conditional(ctx, stale)
            request_time = self.clock()
            try:
                response = await call_next(ctx)
            except Exception:
                if stale is not None and self._usable_on_error(stale):
                    log.warning("route %s: backend failed, serving a stale entry", ctx.route.name)
                    counters.stale.inc()
                    return self._serve(stale, ctx, "STALE", shown)
                raise
            response_time = self.clock()
            status = response.status
            if status == 304 and stale is not None and stale.has_validator:
                await response.close()
                fresh = refreshed(stale, response.headers, request_time, response_time, self.policy)
                if fresh is None:
                    await self._forget(found.primary, counters)
                    fresh = stale
                else:
                    finish((await self._put(found.primary, fresh, counters, ctx), fresh))
                counters.hit.inc()
                return self._serve(fresh, ctx, "HIT", shown)
            if status in _SERVER_ERRORS and stale is not None and self._usable_on_error(stale):
                await response.close()
                counters.stale.inc()
                return self._serve(stale, ctx, "STALE", shown)
            if not background:
                counters.miss.inc()
            meta = None
            if not directives.no_store and status != 304:
                meta = evaluate(status, response.headers, request_time, response_time, self.policy)
            if meta is not None:
                handed_over = await self._store_body(
                    response, meta, found, counters, ctx, finish, background
                )
            return mark(response, "MISS", shown)
        finally:
            if not handed_over:
                finish(None)

    @staticmethod
    def _conditional(ctx: RequestContext, stale: CachedResponse) -> None:
        """Replace the client's validators with the stored entry's (RFC 9111 4.3.1)."""
        headers = ctx.headers
        for name in _CONDITIONALS:
            headers.popall(name, None)
        if stale.etag is not None:
            headers["If-None-Match"] = stale.etag
        if stale.last_modified is not None:
            headers["If-Modified-Since"] = stale.last_modified

    async def _store_body(
        self,
        response: Response,
        meta: CachedResponse,
        found: Lookup,
        counters: RouteCounters,
        ctx: RequestContext,
        finish: Callable[[Shared], None],
        background: bool,
    ) -> bool:
        """Store the body now or once it has streamed; True when the tee now calls `finish`."""
        body = response.body
        if isinstance(body, bytes):
            if len(body) <= self._limit:
                entry = replace(meta, body=body)
                finish((await self._put(found.primary, entry, counters, ctx), entry))
            return False
        length = response.headers.get("Content-Length")
        expected = int(length) if length is not None and length.isdigit() else None
        if expected is not None and expected > self._limit:
            return False

        async def keep(data: bytes) -> None:
            entry = replace(meta, body=data)
            finish((await self._put(found.primary, entry, counters, ctx), entry))

        response.body = tee_body(
            body, self._limit, expected, keep, lambda: finish(None), stop_when_too_large=background
        )
        ctx.add_cleanup(lambda: finish(None))  # followers never wait on a body nobody reads
        return True

    def _serve(
        self, entry: CachedResponse, ctx: RequestContext, state: str, shown: str | None
    ) -> Response:
        return entry_response(
            entry, self.clock(), state, request_headers=ctx.request.headers, key=shown
        )

    def _usable_on_error(self, entry: CachedResponse) -> bool:
        return entry.age(self.clock()) - entry.freshness < entry.stale_if_error

    async def _put(
        self, primary: str, entry: CachedResponse, counters: RouteCounters, ctx: RequestContext
    ) -> str:
        """Store `entry` under the key its Vary selects (with a marker at `primary`); return it."""
        items: list[tuple[str, Item, float]]
        if entry.vary:
            key = variant_key(primary, entry.vary, ctx.request.headers)
            items = [
                (primary, VaryMarker(entry.vary), entry.storage_ttl),
                (key, entry, entry.storage_ttl),
            ]
        else:
            key = primary
            items = [(primary, entry, entry.storage_ttl)]
        try:
            counters.stored_bytes.inc(await self.store.put(items))
        except StoreUnavailable:
            counters.store_errors.inc()
        except Exception:
            log.exception("cache: storing %r failed", primary)
            counters.store_errors.inc()
        return key

    async def _forget(self, key: str, counters: RouteCounters) -> None:
        try:
            await self.store.delete(key)
        except StoreUnavailable:
            counters.store_errors.inc()

    # -- invalidation, background work, lifecycle -----------------------------------------------

    async def _invalidating(self, ctx: RequestContext, call_next: Handler) -> Response:
        """Pass an unsafe request on; when it succeeds, drop what is stored for its URL."""
        response = await call_next(ctx)
        if response.status < 400:
            consumer = self._consumer(ctx)
            if consumer is not None:
                await self._forget(self._key(ctx, consumer), self.metrics.route(ctx.route.name))
        return response

    def _refresh_in_background(
        self, ctx: RequestContext, call_next: Handler, found: Lookup
    ) -> None:
        """Revalidate a stale entry without making the client wait (stale-while-revalidate)."""
        if found.key in self._flights:
            return
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
        counters = self.metrics.route(ctx.route.name)
        try:
            response = await self._fetch(
                ctx, call_next, found, _NO_DIRECTIVES, counters, lead=True, background=True
            )
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

    async def purge(self, selector: PurgeFilter) -> int:
        """Remove the stored entries `selector` matches."""
        return await self.store.purge(selector)

    async def close(self) -> None:
        """Let background refreshes finish (briefly), then release the store."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2.0)
            for task in self._tasks:
                task.cancel()
        await self.store.close()
