"""admin.plugins: installed plugins loaded only for the admin endpoints they add."""

from __future__ import annotations

from pathlib import Path

import pytest
from stevedore import ExtensionManager

from kairos_core.config.errors import ConfigError
from kairos_core.config.loader import load_config
from kairos_core.gateway import Gateway

PLUGIN = '''
"""A plugin that only adds an admin page."""

from aiohttp import web

from kairos_core import AdminRoute, hookimpl


async def hello(request):
    return web.json_response({"hello": "admin"})


@hookimpl
def register_admin_routes(register):
    register(AdminRoute("GET", "/probe-page", hello, name="probe-page"))
'''


@pytest.fixture
def admin_only_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An installed `admin-probe` plugin (entry point + module) on sys.path."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "kairos_admin_probe.py").write_text(PLUGIN)
    info = site / "kairos_admin_probe-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: kairos-admin-probe\nVersion: 0.1.0\n"
    )
    (info / "entry_points.txt").write_text("[kairos]\nadmin-probe = kairos_admin_probe\n")
    monkeypatch.syspath_prepend(str(site))
    # stevedore remembers a group's entry points for the whole process: forget them for
    # this test, as a gateway started after the install would never have seen them.
    monkeypatch.setattr(ExtensionManager, "ENTRY_POINT_CACHE", {})
    return "admin-probe"


async def test_listed_plugin_adds_its_admin_routes(
    admin_only_plugin, kairos_gateway, echo_backend, http
):
    config = {
        "admin": {"plugins": [admin_only_plugin]},
        "routes": [{"prefix": "/", "upstream": {"backends": [{"url": echo_backend.url}]}}],
    }
    gw = await kairos_gateway(config)
    async with http.get(gw.admin_url + "/probe-page") as response:
        assert response.status == 200
        assert await response.json() == {"hello": "admin"}
    async with http.get(gw.admin_url + "/plugins") as response:
        listed = {p["name"]: p for p in await response.json()}
    assert listed[admin_only_plugin]["enabled"] is True


async def test_unlisted_plugin_is_not_imported(
    admin_only_plugin, kairos_gateway, echo_backend, http
):
    config = {"routes": [{"prefix": "/", "upstream": {"backends": [{"url": echo_backend.url}]}}]}
    gw = await kairos_gateway(config)
    async with http.get(gw.admin_url + "/probe-page") as response:
        assert response.status == 404
    async with http.get(gw.admin_url + "/plugins") as response:
        listed = {p["name"]: p for p in await response.json()}
    assert listed[admin_only_plugin]["enabled"] is False


def test_missing_admin_plugin_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        "admin:\n"
        "  plugins: [no-such-admin-plugin]\n"
        "routes:\n"
        "  - prefix: /\n"
        "    upstream: {backends: [{url: 'http://127.0.0.1:9'}]}\n"
    )
    loaded = load_config(path)
    with pytest.raises(ConfigError) as info:
        Gateway(loaded).prepare(loaded)
    assert str(info.value).startswith(f"{path}:2: admin.plugins[0]: plugin 'no-such-admin-plugin'")
    assert "is not installed" in str(info.value)
