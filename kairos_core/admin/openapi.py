"""The admin API's OpenAPI 3.1 document, built from the same pydantic models the server uses."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from kairos_core.admin import models
from kairos_core.plugin_api import AdminRoute
from kairos_core.version import __version__

_REF = "#/components/schemas/{model}"

# (method, path, summary, response model or raw schema, request body media type, statuses)
_ENDPOINTS: list[tuple[str, str, str, Any, str | None, tuple[int, ...]]] = [
    ("get", "/health", "Whether the gateway is up.", models.Health, None, (200, 503)),
    ("get", "/live", "Liveness: the admin listener answers.", {"type": "object"}, None, (200,)),
    (
        "get",
        "/ready",
        "Readiness: config loaded, listeners bound, workers answering.",
        models.Readiness,
        None,
        (200, 503),
    ),
    (
        "get",
        "/metrics",
        "Prometheus metrics (text exposition), merged across workers.",
        "text",
        None,
        (200,),
    ),
    (
        "get",
        "/routes",
        "Routes with their match rules and plugin chain.",
        [models.RouteInfo],
        None,
        (200,),
    ),
    (
        "get",
        "/upstreams",
        "Upstream pools and each backend's live state.",
        [models.UpstreamInfo],
        None,
        (200,),
    ),
    (
        "get",
        "/config",
        "The running configuration, secrets redacted.",
        {"type": "object"},
        None,
        (200,),
    ),
    (
        "get",
        "/plugins",
        "Installed plugins and whether the configuration enables them.",
        [models.PluginInfo],
        None,
        (200,),
    ),
    (
        "post",
        "/config/validate",
        "Validate a candidate configuration (YAML or JSON body, UTF-8 unless the charset says).",
        models.ValidationResult,
        "text/plain",
        (200, 400, 413),
    ),
    (
        "post",
        "/config/reload",
        "Reload the configuration file in every worker.",
        models.ReloadResult,
        None,
        (200, 422),
    ),
    (
        "get",
        "/stream",
        "Live metrics over a WebSocket (`interval` query, seconds). Browsers, which cannot set "
        "headers here, offer the subprotocols `kairos.stream` and `bearer.<base64url token>`.",
        None,
        None,
        (101, 400),
    ),
    ("get", "/openapi.json", "This document.", {"type": "object"}, None, (200,)),
]


def _schema(target: Any, components: dict[str, Any]) -> dict[str, Any]:
    if isinstance(target, list):
        return {"type": "array", "items": _schema(target[0], components)}
    if isinstance(target, type) and issubclass(target, BaseModel):
        schema = target.model_json_schema(ref_template=_REF)
        components.update(schema.pop("$defs", {}))
        components[target.__name__] = schema
        return {"$ref": _REF.format(model=target.__name__)}
    return dict(target)


def build_openapi(plugin_routes: Iterable[AdminRoute] = ()) -> dict[str, Any]:
    """The document: every core endpoint, plus the routes plugins added."""
    components: dict[str, Any] = {}
    error = _schema(models.ErrorBody, components)
    paths: dict[str, dict[str, Any]] = {}
    for method, path, summary, response, body, statuses in _ENDPOINTS:
        operation: dict[str, Any] = {
            "summary": summary,
            "operationId": _operation_id(method, path),
            "responses": {},
        }
        for status in statuses:
            if status == 101:
                operation["responses"]["101"] = {"description": "Switching to WebSocket"}
            elif status >= 400:
                operation["responses"][str(status)] = {
                    "description": "Error",
                    "content": {"application/json": {"schema": error}},
                }
            elif response == "text":
                operation["responses"][str(status)] = {
                    "description": "OK",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            elif response is not None:
                operation["responses"][str(status)] = {
                    "description": "OK" if status < 300 else "Not ready",
                    "content": {"application/json": {"schema": _schema(response, components)}},
                }
        operation["responses"]["401"] = {
            "description": "Admin token required",
            "content": {"application/json": {"schema": error}},
        }
        if body is not None:
            # the server refuses a candidate of nothing but spaces and line breaks with 400
            candidate = {"type": "string", "pattern": "[^ \\t\\r\\n]"}
            operation["requestBody"] = {"required": True, "content": {body: {"schema": candidate}}}
        if path == "/stream":
            operation["parameters"] = [
                {
                    "name": "interval",
                    "in": "query",
                    "schema": {"type": "number", "minimum": 0.1, "maximum": 60},
                },
                {"name": "routes", "in": "query", "schema": {"type": "string"}},
            ]
        paths.setdefault(path, {})[method] = operation
    for route in plugin_routes:
        operation = {
            "summary": (route.handler.__doc__ or route.name or "Plugin endpoint")
            .strip()
            .splitlines()[0],
            "operationId": _operation_id(route.method.lower(), route.path),
            "responses": {
                "200": {"description": "OK"},
                "401": {"description": "Admin token required"},
                "default": {
                    "description": "Error",
                    "content": {"application/json": {"schema": error}},
                },
            },
        }
        if route.body is not None:
            schema = route.body.model_json_schema(ref_template=_REF)  # inline: names may clash
            components.update(schema.pop("$defs", {}))
            content = {"application/json": {"schema": schema}}
            operation["requestBody"] = {"required": True, "content": content}
            operation["responses"]["400"] = {
                "description": "Invalid body",
                "content": {"application/json": {"schema": error}},
            }
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "Kairos admin API", "version": __version__},
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}, {}],
        "paths": paths,
    }


def _operation_id(method: str, path: str) -> str:
    cleaned = (
        path.strip("/").replace("/", "_").replace(".", "_").replace("{", "").replace("}", "")
        or "root"
    )
    return f"{method}_{cleaned}"
