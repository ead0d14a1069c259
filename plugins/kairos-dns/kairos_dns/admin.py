"""`POST /dns/cache/purge` on the admin API: purge the DNS caches of every worker."""

from __future__ import annotations

from aiohttp import web
from pydantic import ValidationError

from kairos_core import AdminRoute, control_plane
from kairos_dns.state import PURGE_COMMAND, PurgeRequest


async def purge_endpoint(request: web.Request) -> web.Response:
    """Body `{"all": true}`, `{"name": ..., "type": ...}` or `{"zone": ...}`."""
    try:
        body = await request.json()
    except ValueError:
        return _error(400, "invalid_json", "the request body must be a JSON object")
    if not isinstance(body, dict):
        return _error(400, "invalid_json", "the request body must be a JSON object")
    try:
        PurgeRequest.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        return _error(400, "invalid_purge", problems)
    try:
        results = await control_plane(request).broadcast(PURGE_COMMAND, body)
    except KeyError:
        return _error(404, "no_dns", "the running configuration has no DNS listener or doh route")
    removed = sum(int(result.get("removed", 0)) for result in results)
    return web.json_response({"removed": removed, "workers": len(results)})


def _error(status: int, kind: str, message: str) -> web.Response:
    return web.json_response({"status": status, "type": kind, "message": message}, status=status)


ADMIN_ROUTE = AdminRoute("POST", "/dns/cache/purge", purge_endpoint, name="dns-cache-purge")
