"""The generated reference pages cover the code they are generated from."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
import yaml
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

from kairos_docgen import generate_pages
from kairos_docgen.admin_ref import admin_page, load_openapi, openapi_page, routes_page
from kairos_docgen.cli_ref import cli_page, walk
from kairos_docgen.config_ref import config_page, defaults_yaml
from kairos_docgen.models import nested_models
from kairos_docgen.plugins_ref import plugins_page
from kairos_docgen.readme import include_readme_blocks, readme_block

from kairos_cli.main import cli
from kairos_core import AdminRoute
from kairos_core.config.models import GatewayConfig
from kairos_core.plugins import PluginHost

ROOT = Path(__file__).resolve().parents[1]


def test_config_reference_has_every_field_of_every_section():
    page = config_page()
    models = nested_models(GatewayConfig)
    assert {m.__name__ for m in models} >= {"RouteConfig", "UpstreamConfig", "AdminConfig"}
    for model in models:
        section = page.split(f"### {model.__name__} {{#")[1].split("\n### ")[0]
        for name, field in model.model_fields.items():
            assert f"| `{name}` |" in section, f"{model.__name__}.{name} missing"
            if field.description:
                assert field.description.split("\n")[0][:40] in section


def test_config_reference_defaults_are_the_models_defaults():
    assert GatewayConfig.model_validate(yaml.safe_load(defaults_yaml())) == GatewayConfig()
    page = config_page()
    assert "`104857600` (100.0 MiB)" in page  # server.max_body_size
    assert "| `backends` | list of [BackendConfig](#backendconfig) | **required** |" in page


def test_cli_reference_has_every_command_and_option():
    page = cli_page(cli, builtin=set(cli.commands))
    paths = [" ".join(path) for path, _command, _ctx in walk(cli, ("kairos",))]
    assert {"kairos serve", "kairos plugins list", "kairos plugins new"} <= set(paths)
    for path, command, _ctx in walk(cli, ("kairos",)):
        assert f"`{' '.join(path)}` {{#{'-'.join(path)}}}" in page
        for param in command.params:
            for opt in param.opts:
                assert opt in page or param.param_type_name == "argument"
    assert "--workers" in page
    serve_row = next(line for line in page.splitlines() if line.startswith("| [`kairos serve`]"))
    assert "(from a plugin)" not in serve_row


def test_admin_reference_lists_core_and_plugin_routes():
    async def stats(request: web.Request) -> web.Response:
        """Plugin statistics."""
        return web.json_response({})

    page = routes_page([AdminRoute("GET", "/plugin/stats", stats)])
    assert "| `GET` | `/health` | no | core |" in page
    assert "| `GET` | `/plugin/stats` | yes | plugin | Plugin statistics. |" in page
    assert "`HEAD`" not in page


OPENAPI = {
    "openapi": "3.1.0",
    "info": {"title": "Kairos admin API", "version": "1"},
    "security": [{"bearer": []}],
    "paths": {
        "/routes/{name}": {
            "get": {
                "summary": "One route",
                "parameters": [
                    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {"200": {"description": "The route"}, "404": {"description": "No"}},
            }
        },
        "/health": {"get": {"summary": "Health", "security": [], "responses": {}}},
    },
}


def test_admin_reference_renders_an_openapi_document():
    page = openapi_page(OPENAPI)
    assert "| `GET` | [`/routes/{name}`](#get-routes-name) | One route | yes |" in page
    assert "| `GET` | [`/health`](#get-health) | Health | no |" in page
    assert "| `name` | path | string | yes |  |" in page
    assert "| 404 | No |" in page


def test_admin_reference_switches_to_openapi_once_the_core_has_it(monkeypatch):
    module = types.ModuleType("fake_openapi")
    module.build_openapi = lambda: OPENAPI  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_openapi", module)
    assert load_openapi(["missing_module:build", "fake_openapi:build_openapi"]) == OPENAPI
    monkeypatch.setattr(
        "kairos_docgen.admin_ref.OPENAPI_PROVIDERS", ("fake_openapi:build_openapi",)
    )
    assert "One route" in admin_page()


def test_plugins_reference_lists_builtin_components():
    host = PluginHost()
    page = plugins_page(ROOT / "docs", [], host.registry())
    assert (
        "| [`round_robin`](#component-round-robin) | balancer | kairos-gateway (built in) |" in page
    )
    assert "`greeting`" in page  # the demo protocol's settings table


def test_readme_blocks_are_quoted_verbatim(tmp_path):
    readme = ROOT / "README.md"
    block = readme_block(readme, "quickstart:serve")
    assert block.startswith("```sh\n")
    assert "kairos serve" in block
    page = include_readme_blocks("before\n<!-- readme:quickstart:serve -->\nafter", readme)
    assert page == f"before\n{block}\nafter"
    with pytest.raises(ValueError, match="no <!-- nothing --> marker"):
        include_readme_blocks("<!-- readme:nothing -->", readme)


def test_every_generated_page_is_in_the_nav():
    pages = generate_pages(ROOT / "docs")
    nav = (ROOT / "docs" / ".nav.yml").read_text()
    for uri in pages:
        assert uri in nav
