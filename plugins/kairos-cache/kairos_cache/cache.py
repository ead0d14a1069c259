"""The cache stage: look up, serve fresh or stale, revalidate, coalesce misses, invalidate."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from kairos_cache.directives import parse_cache_control, seconds
from kairos_cache.entry import CachedResponse, VaryMarker
from kairos_cache.fetch import Fetcher, Lookup, Shared
from kairos_cache.keys import PurgeFilter, variant_key
from kairos_cache.metrics import CacheMetrics, RouteCounters
from kairos_cache.serve import entry_response, mark
from kairos_cache.stores import CacheStore, Item, StoreUnavailable
from kairos_core import Handler, RequestContext, Response, error_response

_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class ClientDirectives:
    """The parts of a request's Cache-Control the cache acts on."""

    max_age: float | None = None
    """Oldest acceptable age; -1 for no-cache (always revalidate)."""
    no_store: bool = False
    only_if_cached: bool = False


_NO_DIRECTIVES = ClientDirectives()


class ResponseCache:
    """One configured `cache` entry: a stage the gateway awaits per request, plus its store."""

    def __init__(
        self,
        *,
        store: CacheStore,
        fetcher: Fetcher,
        clock: Callable[[], float],
        metrics: CacheMetrics,
        key: Callable[[RequestContext, str], str],
        route_name: str | None,
        allow_credentials: bool,
        request_directives: bool,
        invalidate_on_unsafe: bool,
        expose_key: bool,
    ) -> None:
        self.store = store
        self.fetcher = fetcher
        self.clock = clock
        self.metrics = metrics
        self._key = key
        self._counters = metrics.route(route_name) if route_name is not None else None
        self._peek = getattr(store, "peek", None)
        """A synchronous lookup when the store has one (memory): no coroutine per hit."""
        self._allow_credentials = allow_credentials
        self._request_directives = request_directives
        self._invalidate = invalidate_on_unsafe
        self._expose = expose_key

    async def __call__(self, ctx: RequestContext, call_next: Handler) -> Response:
        """Answer from the cache when allowed, else fetch through `call_next` and store."""
        method = ctx.request.method
        if method != "GET" and method != "HEAD":
            if self._invalidate and method in _UNSAFE:
                return await self._invalidating(ctx, call_next)
            return await call_next(ctx)
        counters = self._counters or self.metrics.route(ctx.route.name)
        consumer = self._consumer(ctx)
        if consumer is None or "Range" in ctx.request.headers or ctx.request.body_exists:
            counters.bypass.inc()
            return mark(await call_next(ctx), "BYPASS")
        primary = self._key(ctx, consumer)
        try:
            peek = self._peek
            if peek is not None:
                found = self._lookup_now(primary, ctx, peek)
            else:
                found = await self._lookup(primary, ctx)
        except StoreUnavailable:
            counters.store_errors.inc()
            counters.bypass.inc()
            return mark(await call_next(ctx), "BYPASS", primary if self._expose else None)
        entry = found.entry
        directives = self._directives(ctx) if self._request_directives else _NO_DIRECTIVES
        head = method == "HEAD"
        if entry is not None:
            now = self.clock()
            age = entry.age(now)
            limit = directives.max_age
            if age < entry.freshness and (limit is None or age <= limit):
                counters.hit.inc()
                return entry_response(
                    entry,
                    now,
                    "HIT",
                    head=head,
                    request_headers=ctx.request.headers,
                    key=found.shown,
                )
            if limit is None and age - entry.freshness < entry.stale_while_revalidate:
                if not head:
                    self.fetcher.refresh_in_background(ctx, call_next, found)
                counters.stale.inc()
                return entry_response(
                    entry,
                    now,
                    "STALE",
                    head=head,
                    request_headers=ctx.request.headers,
                    key=found.shown,
                )
        if directives.only_if_cached:
            counters.miss.inc()
            refusal = error_response(
                504, "not_cached", "only-if-cached: no usable stored response", ctx.request_id
            )
            return mark(refusal, "MISS", found.shown)
        if head:
            counters.miss.inc()
            return mark(await call_next(ctx), "MISS", found.shown)
        flight = self.fetcher.flights.get(found.key) if self.fetcher.coalesce else None
        if flight is not None:
            shared = await asyncio.shield(flight)
            if shared is not None and _matches(shared, primary, ctx):
                counters.hit.inc()
                return entry_response(
                    shared[1],
                    self.clock(),
                    "HIT",
                    request_headers=ctx.request.headers,
                    key=found.shown,
                )
            return await self.fetcher.fetch(
                ctx, call_next, found, counters, lead=False, no_store=directives.no_store
            )
        return await self.fetcher.fetch(
            ctx, call_next, found, counters, no_store=directives.no_store
        )

    def _consumer(self, ctx: RequestContext) -> str | None:
        """'' for anonymous requests, the consumer's name when credentials may be cached, else None.

        The client's own headers decide (`ctx.headers`, the upstream request's, is not built for
        a hit)."""
        headers = ctx.request.headers
        if ctx.consumer is None and "Authorization" not in headers and "Cookie" not in headers:
            return ""
        if not self._allow_credentials or ctx.consumer is None:
            return None
        return ctx.consumer.name

    def _lookup_now(
        self, primary: str, ctx: RequestContext, peek: Callable[[str], Item | None]
    ) -> Lookup:
        """Where this request stands, from a store that answers at once (memory)."""
        item = peek(primary)
        if isinstance(item, VaryMarker):
            key = variant_key(primary, item.names, ctx.request.headers)
            return self._result(primary, item, key, peek(key))
        return self._result(primary, item)

    async def _lookup(self, primary: str, ctx: RequestContext) -> Lookup:
        """Where this request stands, from a store that answers asynchronously (Redis)."""
        item = await self.store.get(primary)
        if isinstance(item, VaryMarker):
            key = variant_key(primary, item.names, ctx.request.headers)
            return self._result(primary, item, key, await self.store.get(key))
        return self._result(primary, item)

    def _result(
        self, primary: str, item: Item | None, key: str = "", variant: Item | None = None
    ) -> Lookup:
        """The lookup for what is stored at `primary` (and at `key` when that is a Vary marker)."""
        shown = primary if self._expose else None
        if item is None:
            return Lookup(primary, primary, None, shown)
        if isinstance(item, VaryMarker):
            if isinstance(variant, CachedResponse) and variant.vary == item.names:
                return Lookup(primary, key, variant, shown)
            return Lookup(primary, key, None, shown)
        return Lookup(primary, primary, None if item.vary else item, shown)

    @staticmethod
    def _directives(ctx: RequestContext) -> ClientDirectives:
        headers = ctx.request.headers
        if "Cache-Control" not in headers:
            return _NO_DIRECTIVES
        cc = parse_cache_control(headers.getall("Cache-Control"))
        max_age = -1.0 if "no-cache" in cc else seconds(cc, "max-age")
        return ClientDirectives(max_age, "no-store" in cc, "only-if-cached" in cc)

    async def _invalidating(self, ctx: RequestContext, call_next: Handler) -> Response:
        """Pass an unsafe request on; when it succeeds, drop what is stored for its URL."""
        response = await call_next(ctx)
        if response.status < 400:
            consumer = self._consumer(ctx)
            if consumer is not None:
                counters: RouteCounters = self._counters or self.metrics.route(ctx.route.name)
                await self.fetcher.forget(self._key(ctx, consumer), counters)
        return response

    async def purge(self, selector: PurgeFilter) -> int:
        """Remove the stored entries `selector` matches."""
        return await self.store.purge(selector)

    async def close(self) -> None:
        """Finish background work, then release the store."""
        await self.fetcher.close()
        await self.store.close()


def _matches(shared: Shared, primary: str, ctx: RequestContext) -> bool:
    """True when a coalesced fetch's result is the variant this request asks for."""
    assert shared is not None
    key, entry = shared
    if not entry.vary:
        return key == primary
    return key == variant_key(primary, entry.vary, ctx.request.headers)
