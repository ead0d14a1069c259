"""End-to-end proxying through a real gateway to real aiohttp backends."""

from __future__ import annotations

from typing import Any

import aiohttp

from kairos_core.testing import Backend


def route(backend: Backend, **extra: Any) -> dict[str, Any]:
    """A route config to `backend` with the given overrides."""
    return {"upstream": {"backends": [{"url": backend.url}]}, **extra}


async def test_proxies_path_query_and_method(kairos_gateway, echo_backend, http) -> None:
    gw = await kairos_gateway({"routes": [route(echo_backend, prefix="/")]})
    async with http.put(gw.url + "/a/b?x=1&y=%20z", data=b"payload") as response:
        assert response.status == 200
        body = await response.json()
    assert body["method"] == "PUT"
    assert body["raw_path"] == "/a/b?x=1&y=%20z"
    assert body["body"] == "payload"


async def test_rewrite_substitutes_path_params(kairos_gateway, echo_backend, http) -> None:
    gw = await kairos_gateway(
        {"routes": [route(echo_backend, path="/api/users/{id}", rewrite="/v1/user/{id}")]}
    )
    async with http.get(gw.url + "/api/users/42?full=1") as response:
        body = await response.json()
    assert body["raw_path"] == "/v1/user/42?full=1"


async def test_strip_prefix(kairos_gateway, echo_backend, http) -> None:
    gw = await kairos_gateway({"routes": [route(echo_backend, prefix="/svc", strip_prefix=True)]})
    async with http.get(gw.url + "/svc/items/3") as response:
        assert (await response.json())["raw_path"] == "/items/3"
    async with http.get(gw.url + "/svc") as response:
        assert (await response.json())["raw_path"] == "/"


async def test_not_found_and_method_not_allowed_are_json(
    kairos_gateway, echo_backend, http
) -> None:
    gw = await kairos_gateway(
        {"routes": [route(echo_backend, path="/only", methods=["GET", "POST"])]}
    )
    async with http.get(gw.url + "/other") as response:
        assert response.status == 404
        body = await response.json()
        assert body["type"] == "route_not_found"
        assert body["request_id"] == response.headers["X-Request-ID"]
    async with http.delete(gw.url + "/only") as response:
        assert response.status == 405
        assert response.headers["Allow"] == "GET, POST"


async def test_upstream_refused_is_502(kairos_gateway, http) -> None:
    gw = await kairos_gateway(
        {"routes": [{"prefix": "/", "upstream": {"backends": [{"url": "http://127.0.0.1:1"}]}}]}
    )
    async with http.get(gw.url + "/") as response:
        assert response.status == 502
        body = await response.json()
        assert body["type"] == "upstream_connect"


async def test_client_library_smoke(kairos_gateway, echo_backend) -> None:
    gw = await kairos_gateway({"routes": [route(echo_backend, prefix="/")]})
    async with aiohttp.ClientSession() as session, session.get(gw.url + "/x") as response:
        assert response.status == 200
