"""The dashboard's files: served from the package, public but data-free, shipped in the wheel."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from kairos_dashboard.assets import PAGE_POLICY, load_assets, static_files

from kairos_core.plugins import PluginHost

PROJECT = Path(__file__).resolve().parents[1]
TOKEN = "dashboard-test-token-0123456789"


def gateway_config(backend_url: str, **admin: object) -> dict[str, object]:
    return {
        "admin": {"port": 0, "plugins": ["dashboard"], **admin},
        "routes": [
            {"name": "api", "prefix": "/", "upstream": {"backends": [{"url": backend_url}]}}
        ],
    }


def test_entry_point_registers_only_public_file_routes() -> None:
    host = PluginHost()
    host.load(["dashboard"])
    routes = host.registry().admin_routes
    paths = {r.path for r in routes}
    assert {
        "/dashboard",
        "/dashboard/",
        "/dashboard/js/app.js",
        "/dashboard/dashboard.css",
    } <= paths
    assert "/dashboard/vendor/uPlot.iife.min.js" in paths
    assert all(r.method == "GET" and r.public for r in routes)
    assert len(paths) == len(routes) == len(list(static_files())) + 1


async def test_page_and_files_are_served_without_the_token_but_data_is_not(
    kairos_gateway, echo_backend, http
):
    gw = await kairos_gateway(gateway_config(echo_backend.url, token=TOKEN))
    async with http.get(gw.admin_url + "/dashboard", allow_redirects=False) as response:
        assert response.status == 302
        assert response.headers["Location"] == "dashboard/"
    async with http.get(gw.admin_url + "/dashboard/") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        assert response.headers["Content-Security-Policy"] == PAGE_POLICY
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "<main" in await response.text()
    expected_types = {
        "js/app.js": "text/javascript; charset=utf-8",
        "dashboard.css": "text/css; charset=utf-8",
        "favicon.svg": "image/svg+xml",
        "vendor/uPlot-LICENSE.txt": "text/plain; charset=utf-8",
    }
    for path, content_type in expected_types.items():
        async with http.get(f"{gw.admin_url}/dashboard/{path}") as response:
            assert response.status == 200, path
            assert response.headers["Content-Type"] == content_type
            assert response.headers["X-Content-Type-Options"] == "nosniff"
    for path in ("/routes", "/config", "/plugins", "/dashboard/../config"):
        async with http.get(gw.admin_url + path) as response:
            assert response.status == 401, path
    async with http.get(gw.admin_url + "/dashboard/nothing-here.js") as response:
        assert response.status in (401, 404)  # unknown paths are not public


async def test_files_are_revalidated_by_etag(kairos_gateway, echo_backend, http):
    gw = await kairos_gateway(gateway_config(echo_backend.url))
    url = gw.admin_url + "/dashboard/js/app.js"
    async with http.get(url) as response:
        etag = response.headers["ETag"]
        assert response.headers["Cache-Control"] == "no-cache"
    async with http.get(url, headers={"If-None-Match": etag}) as response:
        assert response.status == 304
        assert await response.read() == b""
    async with http.get(url, headers={"If-None-Match": '"stale"'}) as response:
        assert response.status == 200


def test_every_asset_is_local() -> None:
    """Nothing is fetched from elsewhere: no CDN, no remote fonts, no absolute URLs."""
    remote = re.compile(rb"""(src|href|url)\s*[=(]\s*["']?(https?:)?//""", re.IGNORECASE)
    for asset in load_assets():
        if asset.path.endswith((".html", ".css", ".svg")) or "/js/" in asset.path:
            assert not remote.search(asset.body), asset.path
        if asset.path.endswith(".js") and "/js/" in asset.path:
            assert b"import(" not in asset.body, asset.path
    names = {path for path, _ in static_files()}
    assert {"vendor/uPlot.iife.min.js", "vendor/uPlot.min.css", "vendor/uPlot-LICENSE.txt"} <= names


def test_wheel_ships_every_file(tmp_path: Path) -> None:
    pytest.importorskip("hatchling")
    code = "import sys, hatchling.build as b; print(b.build_wheel(sys.argv[1]))"
    built = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    wheel = tmp_path / built.stdout.strip().splitlines()[-1]
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
        entry_points = next(n for n in shipped if n.endswith("entry_points.txt"))
        assert "dashboard = kairos_dashboard" in archive.read(entry_points).decode()
    expected = {f"kairos_dashboard/static/{path}" for path, _ in static_files()}
    assert expected <= shipped, expected - shipped
    assert "kairos_dashboard/py.typed" in shipped
