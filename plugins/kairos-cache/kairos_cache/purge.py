"""Purging through the admin API: `POST /cache/purge` broadcast to every worker's caches."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator

from kairos_cache.keys import PurgeFilter
from kairos_cache.redis_store import RedisClients
from kairos_cache.stores import CacheStore, StoreUnavailable
from kairos_core import AdminRoute, control_plane, json_error, read_json_body

log = logging.getLogger("kairos.cache")

COMMAND = "cache.purge"


class PurgeRequest(BaseModel):
    """What to purge: one key, a route, a path prefix (optionally within a route), or all."""

    model_config = ConfigDict(extra="forbid")

    key: str | None = Field(None, description="An exact cache key (see `expose_key`).")
    route: str | None = Field(None, description="Every entry of this route.")
    prefix: str | None = Field(None, description="Entries whose path starts with this.")
    all: bool = Field(False, description="Everything the gateway's caches hold.")

    @model_validator(mode="after")
    def _one_selector(self) -> PurgeRequest:
        chosen = self.key is not None or self.route is not None or self.prefix is not None
        if self.all and chosen:
            raise ValueError("`all` cannot be combined with key, route or prefix")
        if not self.all and not chosen:
            raise ValueError("give `key`, `route`, `prefix` (path) or `all: true`")
        if self.key is not None and (self.route is not None or self.prefix is not None):
            raise ValueError("`key` names one entry: do not combine it with route or prefix")
        if self.prefix is not None and not self.prefix.startswith("/"):
            raise ValueError("`prefix` is a path and must start with '/'")
        return self

    def selector(self) -> PurgeFilter:
        """The filter stores apply."""
        return PurgeFilter(key=self.key, route=self.route, prefix=self.prefix)


@dataclass
class CacheRegistry:
    """Per configuration (in `services.shared["cache"]`): every cache store and the Redis clients."""

    stores: list[CacheStore] = field(default_factory=list)
    redis: RedisClients = field(default_factory=RedisClients)

    async def purge(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The `cache.purge` command: purge every distinct store in this worker."""
        selector = PurgeRequest.model_validate(payload).selector()
        removed = 0
        errors: list[str] = []
        seen: set[object] = set()
        for store in self.stores:
            local = getattr(store, "local", None)
            if local is not None:  # a worker's own tier in front of a shared store
                await local.purge(selector)
            shared = getattr(store, "remote", store)
            identity = getattr(shared, "identity", id(shared))
            if identity in seen:
                continue
            seen.add(identity)
            try:
                removed += await shared.purge(selector)
            except StoreUnavailable as exc:
                errors.append(str(exc))
        return {"removed": removed, "errors": errors}


async def purge_endpoint(request: web.Request) -> web.Response:
    """`POST /cache/purge` with `{"key"|"route"|"prefix"|"all"}`: purge in every worker."""
    body = await read_json_body(request, PurgeRequest)
    try:
        results = await control_plane(request).broadcast(
            COMMAND, body.model_dump(mode="json", exclude_defaults=True)
        )
    except KeyError:
        return json_error(404, "no_cache", "no route of the running configuration uses the cache")
    errors = [e for r in results for e in r.get("errors", ())]
    payload = {
        "removed": sum(int(r.get("removed", 0)) for r in results),
        "workers": len(results),
        "errors": errors,
    }
    return web.json_response(payload, status=503 if errors else 200)


ADMIN_ROUTE = AdminRoute(
    "POST", "/cache/purge", purge_endpoint, name="cache-purge", body=PurgeRequest
)
