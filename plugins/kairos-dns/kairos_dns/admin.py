"""`POST /dns/cache/purge` on the admin API: purge the DNS caches of every worker."""

from __future__ import annotations

from aiohttp import web

from kairos_core import AdminRoute, control_plane, json_error, read_json_body
from kairos_dns.state import PURGE_COMMAND, PurgeRequest


async def purge_endpoint(request: web.Request) -> web.Response:
    """Body `{"all": true}`, `{"name": ..., "type": ...}` or `{"zone": ...}`."""
    body = await read_json_body(request, PurgeRequest)
    try:
        results = await control_plane(request).broadcast(
            PURGE_COMMAND, body.model_dump(mode="json", exclude_defaults=True)
        )
    except KeyError:
        message = "the running configuration has no DNS listener or doh route"
        return json_error(404, "no_dns", message)
    removed = sum(int(result.get("removed", 0)) for result in results)
    return web.json_response({"removed": removed, "workers": len(results)})


ADMIN_ROUTE = AdminRoute(
    "POST", "/dns/cache/purge", purge_endpoint, name="dns-cache-purge", body=PurgeRequest
)
