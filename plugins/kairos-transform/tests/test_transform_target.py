"""Regex path rewrites and query-parameter actions, seen by a real echo backend."""

from __future__ import annotations

import kairos_transform
from yarl import URL


async def test_seed_style_rewrite_after_route_rewrite(kairos_gateway, echo_backend, http) -> None:
    # The seed example: /api/users/{id} -> /v1/user/{id}, then ^/v1/(.+)$ -> /v2/$1.
    gw = await kairos_gateway(
        {
            "routes": [
                {
                    "path": "/api/users/{id}",
                    "rewrite": "/v1/user/{id}",
                    "upstream": {"backends": [{"url": echo_backend.url}]},
                    "plugins": [
                        {
                            "name": "transform",
                            "config": {
                                "request": {
                                    "path": {"pattern": "^/v1/(.+)$", "replacement": "/v2/$1"}
                                }
                            },
                        }
                    ],
                }
            ]
        },
        plugins=[kairos_transform],
    )
    async with http.get(gw.url + "/api/users/42?full=1") as response:
        assert response.status == 200
    assert echo_backend.records[-1].raw_path == "/v2/user/42?full=1"


async def test_named_groups_templates_and_several_rewrites(
    kairos_gateway, echo_backend, http, route
) -> None:
    config = {
        "request": {
            "path": [
                {
                    "pattern": r"^/shop/(?P<shop>[^/]+)/items/(\d+)$",
                    "replacement": "/items/${2}/${shop}/by/$(header.X-User)",
                },
                {"pattern": "/+", "replacement": "/", "all": True},
                {"pattern": "^/never$", "replacement": "/x"},
                {"pattern": "^/items", "replacement": "/v3/items", "when": {"methods": ["GET"]}},
            ]
        }
    }
    gw = await kairos_gateway(route(echo_backend, config), plugins=[kairos_transform])
    headers = {"X-User": "a/b c"}
    async with http.get(gw.url + "/shop/acme/items/7", headers=headers) as response:
        assert response.status == 200
    # Template values are percent-encoded in paths; captured text is kept as it was.
    assert echo_backend.records[-1].raw_path == "/v3/items/7/acme/by/a%2Fb%20c"
    async with http.post(gw.url + "/shop/acme/items/7", headers=headers) as response:
        assert response.status == 200
    assert echo_backend.records[-1].raw_path == "/items/7/acme/by/a%2Fb%20c"


async def test_rewrite_with_missing_variable_is_skipped(
    kairos_gateway, echo_backend, http, route
) -> None:
    config = {"request": {"path": {"pattern": "^/(.*)$", "replacement": "/$(consumer.name)/$1"}}}
    gw = await kairos_gateway(route(echo_backend, config), plugins=[kairos_transform])
    async with http.get(gw.url + "/p") as response:
        assert response.status == 200
    assert echo_backend.records[-1].raw_path == "/p"


async def test_query_actions(kairos_gateway, echo_backend, http, route) -> None:
    config = {
        "request": {
            "query": [
                {"action": "add", "name": "page", "value": "1"},
                {"action": "add", "name": "limit", "value": "50"},
                {"action": "set", "name": "lang", "value": "en gb"},
                {"action": "append", "name": "tag", "value": "gw&1"},
                {"action": "remove", "name": "debug"},
                {"action": "rename", "name": "q", "to": "search"},
                {
                    "action": "replace",
                    "name": "sort",
                    "pattern": "^-(.*)$",
                    "replacement": "$1 desc",
                },
                {"action": "set", "name": "caller", "value": "$(client_ip)"},
            ]
        }
    }
    gw = await kairos_gateway(route(echo_backend, config), plugins=[kairos_transform])
    query = "q=caf%C3%A9+au+lait&limit=10&lang=fr&lang=de&debug=1&tag=a&sort=-date&x=%2F&flag"
    async with http.get(URL(gw.url + "/q?" + query, encoded=True)) as response:
        assert response.status == 200
    raw = echo_backend.records[-1].raw_path
    assert raw == (
        "/q?search=caf%C3%A9+au+lait&limit=10&lang=en%20gb&tag=a&sort=date%20desc&x=%2F&flag"
        "&page=1&tag=gw%261&caller=127.0.0.1"
    )


async def test_query_added_to_request_without_query(
    kairos_gateway, echo_backend, http, route
) -> None:
    config = {"request": {"query": [{"action": "set", "name": "api-key", "value": "k1"}]}}
    gw = await kairos_gateway(route(echo_backend, config), plugins=[kairos_transform])
    async with http.get(gw.url + "/plain") as response:
        assert response.status == 200
    assert echo_backend.records[-1].raw_path == "/plain?api-key=k1"
    config = {"request": {"query": [{"action": "remove", "name": "only"}]}}
    gw = await kairos_gateway(route(echo_backend, config), plugins=[kairos_transform])
    async with http.get(gw.url + "/plain?only=1") as response:
        assert response.status == 200
    assert echo_backend.records[-1].raw_path == "/plain"
