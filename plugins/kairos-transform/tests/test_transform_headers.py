"""Header actions both ways, with templates from the request, consumer and claims."""

from __future__ import annotations

import json

import kairos_transform


async def test_request_header_actions(kairos_gateway, echo_backend, http, route) -> None:
    config = {
        "request": {
            "headers": [
                {"action": "add", "name": "X-Gateway", "value": "kairos"},
                {"action": "add", "name": "X-Kept", "value": "gateway"},
                {"action": "set", "name": "X-Overwritten", "value": "new"},
                {"action": "append", "name": "X-Multi", "value": "two"},
                {"action": "remove", "name": "X-Secret"},
                {"action": "rename", "name": "X-Old", "to": "X-New"},
                {
                    "action": "replace",
                    "name": "X-Token",
                    "pattern": r"^token-(\d+)$",
                    "replacement": "id=$1",
                },
            ]
        }
    }
    gw = await kairos_gateway(route(echo_backend, config), plugins=[kairos_transform])
    sent = {
        "X-Kept": "client",
        "X-Overwritten": "old",
        "X-Multi": "one",
        "X-Secret": "s3cr3t",
        "X-Old": "moved",
        "X-New": "replaced",
        "X-Token": "token-123",
    }
    async with http.get(gw.url + "/h", headers=sent) as response:
        assert response.status == 200
    record = echo_backend.records[-1]
    got = record.headers
    assert got["X-Gateway"] == "kairos"
    assert got["X-Kept"] == "client"  # add leaves an existing header alone
    assert got["X-Overwritten"] == "new"
    assert [v for k, v in record.header_list if k == "X-Multi"] == ["one", "two"]
    assert "X-Secret" not in got
    assert "X-Old" not in got
    assert [v for k, v in record.header_list if k == "X-New"] == ["moved"]
    assert got["X-Token"] == "id=123"


async def test_response_header_actions(kairos_gateway, echo_backend, http, route) -> None:
    config = {
        "response": {
            "headers": [
                {"action": "remove", "name": "Server"},
                {"action": "rename", "name": "X-Backend", "to": "X-Served-By"},
                {"action": "set", "name": "X-Request", "value": "$(request_id)"},
                {"action": "add", "name": "Cache-Control", "value": "no-store"},
                {
                    "action": "replace",
                    "name": "Content-Type",
                    "pattern": "charset=utf-8",
                    "replacement": "charset=UTF-8",
                },
            ]
        }
    }
    gw = await kairos_gateway(route(echo_backend, config), plugins=[kairos_transform])
    async with http.get(gw.url + "/h", headers={"X-Request-ID": "abc-1"}) as response:
        assert response.headers["X-Served-By"] == "echo"
        assert "X-Backend" not in response.headers
        assert response.headers["X-Request"] == "abc-1"
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Content-Type"] == "application/json; charset=UTF-8"
        # The backend's Server header is gone; the gateway adds its own only if none is set.
        assert response.headers["Server"] == "kairos"


async def test_templates_from_the_request(kairos_gateway, echo_backend, http) -> None:
    config = {
        "request": {
            "headers": [
                {"action": "set", "name": "X-Client", "value": "$(client_ip)"},
                {"action": "set", "name": "X-Rid", "value": "rid=$(request_id)"},
                {"action": "set", "name": "X-User-Id", "value": "$(params.id)"},
                {"action": "set", "name": "X-Page", "value": "$(query.page)"},
                {"action": "set", "name": "X-Agent", "value": "$(header.User-Agent)"},
                {"action": "set", "name": "X-Where", "value": "$(method) $(path) on $(route)"},
                {"action": "set", "name": "X-Price", "value": "US$5 $$$(query.page)"},
                {"action": "set", "name": "X-Sort", "value": "$(query.sort|name)"},
                {"action": "set", "name": "X-Missing", "value": "v=$(query.nothing)"},
            ]
        }
    }
    gw = await kairos_gateway(
        {
            "routes": [
                {
                    "name": "users",
                    "path": "/users/{id}",
                    "upstream": {"backends": [{"url": echo_backend.url}]},
                    "plugins": [{"name": "transform", "config": config}],
                }
            ]
        },
        plugins=[kairos_transform],
    )
    headers = {"X-Request-ID": "r-9", "User-Agent": "probe/1"}
    async with http.get(gw.url + "/users/a%20b?page=3", headers=headers) as response:
        assert response.status == 200
    got = echo_backend.records[-1].headers
    assert got["X-Client"] == "127.0.0.1"
    assert got["X-Rid"] == "rid=r-9"
    assert got["X-User-Id"] == "a b"
    assert got["X-Page"] == "3"
    assert got["X-Agent"] == "probe/1"
    assert got["X-Where"] == "GET /users/a%20b on users"
    assert got["X-Price"] == "US$5 $3"
    assert got["X-Sort"] == "name"  # the default
    assert "X-Missing" not in got  # a missing value skips the action


async def test_templates_from_consumer_and_claims(
    kairos_gateway, echo_backend, http, route, identity
) -> None:
    config = {
        "request": {
            "headers": [
                {"action": "set", "name": "X-Consumer-Name", "value": "$(consumer.name)"},
                {"action": "set", "name": "X-Plan", "value": "$(consumer.metadata.plan)"},
                {"action": "set", "name": "X-Sub", "value": "$(claims.sub)"},
                {"action": "set", "name": "X-Org", "value": "$(claims.org.name)#$(claims.org.id)"},
                {"action": "set", "name": "X-Org-Json", "value": "$(claims.org)"},
                {"action": "set", "name": "X-Admin", "value": "$(claims.admin)"},
                {"action": "set", "name": "X-Scope", "value": "$(claims.scope|none)"},
            ]
        }
    }
    cfg = route(
        echo_backend, config, top={"consumers": [{"name": "ann", "metadata": {"plan": "pro"}}]}
    )
    cfg["routes"][0]["plugins"].append({"name": "test-identity"})
    gw = await kairos_gateway(cfg, plugins=[kairos_transform, identity])
    async with http.get(gw.url + "/c", headers={"Authorization": "Test ann"}) as response:
        assert response.status == 200
    got = echo_backend.records[-1].headers
    assert got["X-Consumer-Name"] == "ann"
    assert got["X-Plan"] == "pro"
    assert got["X-Sub"] == "ann"
    assert got["X-Org"] == "Acme#42"
    assert json.loads(got["X-Org-Json"]) == {"id": 42, "name": "Acme"}
    assert got["X-Admin"] == "true"
    assert got["X-Scope"] == "none"

    async with http.get(gw.url + "/c", headers={"Authorization": "Test bob"}) as response:
        assert response.status == 200
    got = echo_backend.records[-1].headers
    assert got["X-Consumer-Name"] == "bob"
    assert "X-Plan" not in got  # bob has no metadata: that action is skipped


async def test_rendered_values_cannot_split_headers(
    kairos_gateway, echo_backend, http, route
) -> None:
    config = {"request": {"headers": [{"action": "set", "name": "X-Q", "value": "$(query.q)"}]}}
    gw = await kairos_gateway(route(echo_backend, config), plugins=[kairos_transform])
    async with http.get(gw.url + "/s?q=a%0d%0aX-Injected:%201") as response:
        assert response.status == 200
    got = echo_backend.records[-1].headers
    assert "X-Q" not in got
    assert "X-Injected" not in got


async def test_conditions_on_request_headers_and_methods(
    kairos_gateway, echo_backend, http, route
) -> None:
    config = {
        "request": {
            "headers": [
                {
                    "action": "set",
                    "name": "X-Json-Client",
                    "value": "yes",
                    "when": {"headers": {"Accept": "json"}, "absent": ["X-Skip"]},
                },
                {"action": "set", "name": "X-Write", "value": "yes", "when": {"methods": ["post"]}},
            ]
        }
    }
    gw = await kairos_gateway(route(echo_backend, config), plugins=[kairos_transform])
    async with http.post(gw.url + "/a", headers={"Accept": "application/json"}) as response:
        assert response.status == 200
    got = echo_backend.records[-1].headers
    assert got["X-Json-Client"] == "yes"
    assert got["X-Write"] == "yes"
    async with http.get(gw.url + "/a", headers={"Accept": "application/json", "X-Skip": "1"}):
        pass
    got = echo_backend.records[-1].headers
    assert "X-Json-Client" not in got
    assert "X-Write" not in got


async def test_response_conditions_on_status_and_header(
    kairos_gateway, echo_backend, http, route
) -> None:
    config = {
        "response": {
            "headers": [
                {
                    "action": "set",
                    "name": "X-Error",
                    "value": "1",
                    "when": {"status": ["5xx", 404]},
                },
                {
                    "action": "set",
                    "name": "X-Echo",
                    "value": "1",
                    "when": {"headers": {"X-Backend": "^echo$"}},
                },
            ]
        }
    }
    gw = await kairos_gateway(route(echo_backend, config), plugins=[kairos_transform])
    for status, flagged in ((200, False), (404, True), (503, True), (400, False)):
        async with http.get(gw.url + "/", headers={"X-Echo-Status": str(status)}) as response:
            assert response.status == status
            assert ("X-Error" in response.headers) is flagged
            assert response.headers["X-Echo"] == "1"
