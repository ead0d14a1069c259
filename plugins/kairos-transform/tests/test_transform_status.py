"""Status mappings: new status, optional new body, conditions; the seed example end to end."""

from __future__ import annotations

import json

import kairos_transform


async def test_seed_example_404_to_200_and_server_removed(
    kairos_gateway, echo_backend, http, route
) -> None:
    config = {
        "request": {"headers": [{"action": "add", "name": "X-Gateway", "value": "kairos"}]},
        "response": {
            "headers": [{"action": "remove", "name": "Server"}],
            "status": [{"from": 404, "to": 200}],
        },
    }
    gw = await kairos_gateway(route(echo_backend, config), plugins=[kairos_transform])
    async with http.get(gw.url + "/x", headers={"X-Echo-Status": "404"}) as response:
        assert response.status == 200
        assert response.reason == "OK"
        body = await response.json()  # the backend's body is kept
    assert body["headers"]["X-Gateway"] == "kairos"


async def test_mapping_with_a_body_replaces_the_upstream_body(
    kairos_gateway, serve, http, route
) -> None:
    backend = await serve(
        b"<h1>Not Found</h1>",
        {"Content-Type": "text/html", "ETag": '"x"', "Content-Encoding": "identity"},
        status=404,
    )
    config = {
        "response": {
            "status": [
                {"from": "5xx", "to": 503, "body": "down"},
                {"from": 404, "to": 200, "body": {"items": [], "found": False}},
            ]
        }
    }
    gw = await kairos_gateway(route(backend, config), plugins=[kairos_transform])
    async with http.get(gw.url + "/missing") as response:
        assert response.status == 200
        raw = await response.read()
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["Content-Length"] == str(len(raw))
        assert "ETag" not in response.headers
        assert "Content-Encoding" not in response.headers
    assert json.loads(raw) == {"items": [], "found": False}


async def test_text_body_status_class_and_conditions(
    kairos_gateway, echo_backend, http, route
) -> None:
    config = {
        "response": {
            "status": [
                {
                    "from": "5xx",
                    "to": 503,
                    "body": "temporarily unavailable",
                    "when": {"headers": {"X-Backend": "echo"}},
                },
                {"from": 418, "to": 204},
                {
                    "from": 401,
                    "to": 403,
                    "body": {"error": "forbidden"},
                    "content_type": "application/problem+json",
                },
            ]
        }
    }
    gw = await kairos_gateway(route(echo_backend, config), plugins=[kairos_transform])
    async with http.get(gw.url + "/", headers={"X-Echo-Status": "502"}) as response:
        assert response.status == 503
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert await response.text() == "temporarily unavailable"
    async with http.get(gw.url + "/", headers={"X-Echo-Status": "418"}) as response:
        assert response.status == 204
        assert await response.read() == b""
        assert "Content-Type" not in response.headers
    async with http.get(gw.url + "/", headers={"X-Echo-Status": "401"}) as response:
        assert response.status == 403
        assert response.headers["Content-Type"] == "application/problem+json"
    async with http.get(gw.url + "/", headers={"X-Echo-Status": "400"}) as response:
        assert response.status == 400  # no mapping


async def test_mapping_applies_to_gateway_errors_too(kairos_gateway, http) -> None:
    config = {"response": {"status": [{"from": 502, "to": 503}]}}
    gw = await kairos_gateway(
        {
            "routes": [
                {
                    "prefix": "/",
                    "upstream": {"backends": [{"url": "http://127.0.0.1:9"}]},
                    "plugins": [{"name": "transform", "config": config}],
                }
            ]
        },
        plugins=[kairos_transform],
    )
    async with http.get(gw.url + "/") as response:
        assert response.status == 503
        assert (await response.json())["type"] == "upstream_connect"
