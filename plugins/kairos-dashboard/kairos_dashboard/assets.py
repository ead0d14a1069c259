"""The dashboard's files (HTML, CSS, JavaScript, the chart library), served from the package."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable

from aiohttp import web

from kairos_core import AdminRoute

MOUNT = "/dashboard"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}
PAGE_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
"""Content-Security-Policy of the page: nothing but its own files and the admin API."""


@dataclass(frozen=True, slots=True)
class Asset:
    """One file of the dashboard, read once when the plugin registers its routes."""

    path: str
    body: bytes
    content_type: str
    etag: str


def static_files(root: Traversable | None = None) -> Iterator[tuple[str, bytes]]:
    """Every file under the package's `static/` folder as (relative path, bytes)."""
    base = root if root is not None else files("kairos_dashboard").joinpath("static")

    def walk(folder: Traversable, prefix: str) -> Iterator[tuple[str, bytes]]:
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.is_dir():
                yield from walk(entry, f"{prefix}{entry.name}/")
            elif not entry.name.startswith("."):
                yield f"{prefix}{entry.name}", entry.read_bytes()

    yield from walk(base, "")


def load_assets() -> list[Asset]:
    """The dashboard's files with their URL paths; `index.html` is served at the mount."""
    assets = []
    for relative, body in static_files():
        suffix = relative[relative.rfind(".") :]
        if suffix not in CONTENT_TYPES:
            raise ValueError(f"kairos-dashboard: no content type for static/{relative}")
        path = f"{MOUNT}/" if relative == "index.html" else f"{MOUNT}/{relative}"
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        assets.append(Asset(path, body, CONTENT_TYPES[suffix], etag))
    return assets


def asset_handler(asset: Asset) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Serve one file: revalidated by ETag, never sniffed, the page under a strict CSP."""
    headers = {
        "Content-Type": asset.content_type,
        "Cache-Control": "no-cache",
        "ETag": asset.etag,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    if asset.content_type.startswith("text/html"):
        headers["Content-Security-Policy"] = PAGE_POLICY
        headers["X-Frame-Options"] = "DENY"

    async def serve(request: web.Request) -> web.StreamResponse:
        if request.headers.get("If-None-Match") == asset.etag:
            return web.Response(status=304, headers={"ETag": asset.etag})
        return web.Response(body=asset.body, headers=headers)

    serve.__doc__ = f"Dashboard file `{asset.path.removeprefix(MOUNT + '/') or 'index.html'}`."
    return serve


async def to_page(request: web.Request) -> web.StreamResponse:
    """Redirect to the dashboard page (`/dashboard/`)."""
    raise web.HTTPFound(f"{MOUNT.rsplit('/', 1)[-1]}/")


def admin_routes() -> list[AdminRoute]:
    """The page and its files, public (they hold no data); the data needs the admin token."""
    routes = [AdminRoute("GET", MOUNT, to_page, public=True, name="dashboard")]
    for asset in load_assets():
        routes.append(
            AdminRoute(
                "GET",
                asset.path,
                asset_handler(asset),
                public=True,
                name="dashboard-page" if asset.path == f"{MOUNT}/" else "dashboard-asset",
            )
        )
    return routes
