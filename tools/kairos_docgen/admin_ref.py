"""The admin API reference: from the OpenAPI document when the core has one, else the live routes.

To switch sources, nothing here needs editing: as soon as one of `OPENAPI_PROVIDERS` can be
imported (or `kairos_core/admin/openapi.json` exists) the page is rendered from that document.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
from collections.abc import Callable, Iterable
from importlib.resources import files
from typing import Any, cast

from kairos_core.admin.app import build_admin_app
from kairos_core.admin.auth import PUBLIC_KEY
from kairos_core.config.models import AdminConfig
from kairos_core.control import ControlPlane
from kairos_core.plugin_api import AdminRoute

OPENAPI_PROVIDERS = (
    "kairos_core.admin.openapi:build_openapi",
    "kairos_core.admin.openapi:openapi_document",
    "kairos_core.admin:build_openapi",
)
"""`module:function` candidates returning the admin OpenAPI document as a dict (first found wins)."""

OPENAPI_RESOURCE = ("kairos_core.admin", "openapi.json")
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def load_openapi(providers: Iterable[str] | None = None) -> dict[str, Any] | None:
    """The admin API's OpenAPI document, or None while the core does not publish one."""
    for spec in OPENAPI_PROVIDERS if providers is None else providers:
        module_name, _, attr = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue
        provider = getattr(module, attr, None)
        if callable(provider):
            return cast(dict[str, Any], provider())
    package, name = OPENAPI_RESOURCE
    resource = files(package).joinpath(name)
    if resource.is_file():
        return cast(dict[str, Any], json.loads(resource.read_text(encoding="utf-8")))
    return None


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def openapi_page(document: dict[str, Any]) -> str:
    """Render an OpenAPI 3 document: every operation with parameters, body and responses."""
    info = document.get("info", {})
    lines = [
        "# Admin API",
        "",
        f"Generated from the admin API's OpenAPI document ({info.get('title', 'Kairos admin API')} "
        f"{info.get('version', '')}, OpenAPI {document.get('openapi', '3')}) on every docs build.",
        "",
        _AUTH_NOTE,
        "",
        "| method | path | summary | token |",
        "|---|---|---|---|",
    ]
    global_security = document.get("security")
    operations = []
    for path, item in document.get("paths", {}).items():
        for method in _METHODS:
            operation = item.get(method)
            if operation is not None:
                operations.append((path, method, operation))
    for path, method, op in operations:
        secured = op.get("security", global_security)
        token = "yes" if secured else "no"
        summary = _cell(op.get("summary") or op.get("description", "").split("\n")[0])
        lines.append(
            f"| `{method.upper()}` | [`{path}`](#{_slug(method, path)}) | {summary} | {token} |"
        )
    for path, method, op in operations:
        lines += ["", f"## `{method.upper()} {path}` {{#{_slug(method, path)}}}", ""]
        if op.get("summary"):
            lines += [op["summary"], ""]
        if op.get("description"):
            lines += [op["description"].strip(), ""]
        params = [*document["paths"][path].get("parameters", []), *op.get("parameters", [])]
        if params:
            lines += ["| parameter | in | type | required | description |", "|---|---|---|---|---|"]
            for param in params:
                kind = param.get("schema", {}).get("type", "")
                lines.append(
                    f"| `{param.get('name')}` | {param.get('in')} | {kind} | "
                    f"{'yes' if param.get('required') else 'no'} | {_cell(param.get('description', ''))} |"
                )
            lines.append("")
        body = op.get("requestBody")
        if body:
            types = ", ".join(f"`{t}`" for t in body.get("content", {}))
            lines += [f"Request body ({types}): {body.get('description', '')}".rstrip(), ""]
        responses = op.get("responses", {})
        if responses:
            lines += ["| status | description |", "|---|---|"]
            for status, response in responses.items():
                lines.append(f"| {status} | {_cell(response.get('description', ''))} |")
    return "\n".join(lines) + "\n"


def _slug(method: str, path: str) -> str:
    cleaned = re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-")
    return f"{method.lower()}-{cleaned or 'root'}"


def routes_page(extra_routes: Iterable[AdminRoute] = ()) -> str:
    """Render the routes the admin application registers now (core and plugin routes)."""
    app = build_admin_app(cast(ControlPlane, object()), AdminConfig(), extra_routes)
    public = app[PUBLIC_KEY]
    plugin_paths = {(r.method.upper(), r.path) for r in extra_routes}
    lines = [
        "# Admin API",
        "",
        "Generated on every docs build from the routes the admin application registers",
        "(the core's and those of the installed plugins). The core does not publish an",
        "OpenAPI document yet; once it does, this page is rendered from that document instead.",
        "",
        _AUTH_NOTE,
        "",
        "| method | path | token | from | description |",
        "|---|---|---|---|---|",
    ]
    for route in app.router.routes():
        method = route.method.upper()
        if method == "HEAD":
            continue  # aiohttp adds HEAD next to every GET
        path = route.resource.canonical if route.resource is not None else ""
        handler: Callable[..., Any] = route.handler
        doc = inspect.getdoc(handler) or ""
        origin = "plugin" if (method, path) in plugin_paths else "core"
        token = "no" if path in public else "yes"
        lines.append(
            f"| `{method}` | `{path}` | {token} | {origin} | {_cell(doc.split(chr(10))[0])} |"
        )
    return "\n".join(lines) + "\n"


_AUTH_NOTE = (
    "The admin API listens on its own address (`admin.host`/`admin.port`, loopback by "
    "default). When `admin.token` is set, every endpoint marked *token* needs "
    "`Authorization: Bearer <token>`; see [security](../security.md)."
)


def admin_page(extra_routes: Iterable[AdminRoute] = ()) -> str:
    """The admin API page from the best available source."""
    document = load_openapi()
    if document is not None:
        return openapi_page(document)
    return routes_page(extra_routes)
