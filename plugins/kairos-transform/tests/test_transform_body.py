"""JSON body edits both ways: field actions, Content-Length, invalid JSON, size cap, policies."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import kairos_transform

JSON = {"Content-Type": "application/json"}


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_request_field_actions(kairos_gateway, echo_backend, http, route, identity) -> None:
    config = {
        "request": {
            "body": [
                {"action": "remove", "path": "password"},
                {"action": "remove", "path": "items.*.internal"},
                {"action": "rename", "path": "name", "to": "profile.full_name"},
                {"action": "rename", "path": "items.*.qty", "to": "items.*.quantity"},
                {"action": "set", "path": "meta.via", "value": "kairos"},
                {"action": "set", "path": "items.0.first", "value": True},
                {
                    "action": "set",
                    "path": "meta.user",
                    "value": {"id": "$(claims.sub)", "org": "$(claims.org.id)"},
                },
                {"action": "add", "path": "meta.via", "value": "ignored: present"},
                {"action": "add", "path": "locale", "value": "en"},
                {"action": "set", "path": "dot\\.key", "value": 1},
                {"action": "set", "path": "ghost", "value": "$(consumer.metadata.none)"},
            ]
        }
    }
    cfg = route(echo_backend, config)
    cfg["routes"][0]["plugins"].append({"name": "test-identity"})
    gw = await kairos_gateway(cfg, plugins=[kairos_transform, identity])
    sent = {
        "name": "Ann Lee",
        "password": "hunter2",
        "items": [{"sku": "a", "qty": 1, "internal": "x"}, {"sku": "b", "qty": 2}],
        "locale": "fr",
    }
    headers = {**JSON, "Authorization": "Test ann"}
    async with http.post(gw.url + "/orders", json=sent, headers=headers) as response:
        assert response.status == 200
    record = echo_backend.records[-1]
    assert json.loads(record.body) == {
        "profile": {"full_name": "Ann Lee"},
        "items": [{"sku": "a", "quantity": 1, "first": True}, {"sku": "b", "quantity": 2}],
        "locale": "fr",
        "meta": {"via": "kairos", "user": {"id": "ann", "org": "42"}},
        "dot.key": 1,
    }
    assert record.headers["Content-Length"] == str(len(record.body))
    assert record.headers["Content-Type"] == "application/json"


async def test_chunked_request_body_gets_a_content_length(
    kairos_gateway, echo_backend, http, route
) -> None:
    config = {"request": {"body": [{"action": "set", "path": "b", "value": 2}]}}
    gw = await kairos_gateway(route(echo_backend, config), plugins=[kairos_transform])
    body = chunks(b'{"a"', b": 1}")
    async with http.post(
        gw.url + "/", data=body, headers={"Content-Type": "application/vnd.api+json"}
    ) as r:
        assert r.status == 200
    record = echo_backend.records[-1]
    assert json.loads(record.body) == {"a": 1, "b": 2}
    assert record.headers["Content-Length"] == str(len(record.body))
    assert "Transfer-Encoding" not in record.headers


async def test_other_content_types_pass_untouched(
    kairos_gateway, echo_backend, http, route
) -> None:
    config = {"request": {"body": [{"action": "set", "path": "x", "value": 1}]}}
    gw = await kairos_gateway(route(echo_backend, config), plugins=[kairos_transform])
    payload = b'{"not": "edited"}  '
    for content_type in ("text/plain", "application/jsonp", "application/x-www-form-urlencoded"):
        async with http.post(
            gw.url + "/", data=payload, headers={"Content-Type": content_type}
        ) as r:
            assert r.status == 200
        assert echo_backend.records[-1].body == payload
    async with http.get(gw.url + "/", headers=JSON) as r:  # no body at all
        assert r.status == 200
    assert echo_backend.records[-1].body == b""


async def test_invalid_request_json_is_a_400(kairos_gateway, echo_backend, http, route) -> None:
    config = {"request": {"body": [{"action": "set", "path": "x", "value": 1}]}}
    gw = await kairos_gateway(route(echo_backend, config), plugins=[kairos_transform])
    for bad in (b"{not json", b"\xff\xfe garbage", b"[1, NaN]", b"[" * 100_000):
        async with http.post(gw.url + "/", data=bad, headers={**JSON, "X-Request-ID": "r1"}) as r:
            assert r.status == 400
            body = await r.json()
        assert body["type"] == "invalid_json"
        assert body["message"].startswith("request body: not valid JSON")
        assert body["request_id"] == "r1"
    assert echo_backend.records == []


async def test_invalid_request_json_can_pass(kairos_gateway, echo_backend, http, route) -> None:
    config = {
        "request": {"on_invalid": "pass", "body": [{"action": "set", "path": "x", "value": 1}]}
    }
    gw = await kairos_gateway(route(echo_backend, config), plugins=[kairos_transform])
    async with http.post(gw.url + "/", data=b"{not json", headers=JSON) as r:
        assert r.status == 200
    assert echo_backend.records[-1].body == b"{not json"


async def test_request_body_over_the_limit(kairos_gateway, echo_backend, http, route) -> None:
    actions = [{"action": "set", "path": "x", "value": 1}]
    big = json.dumps({"data": "z" * 200}).encode()
    strict = await kairos_gateway(
        route(echo_backend, {"request": {"body_limit": 64, "body": actions}}),
        plugins=[kairos_transform],
    )
    for data in (big, chunks(big[:100], big[100:])):
        async with http.post(strict.url + "/", data=data, headers=JSON) as r:
            assert r.status == 413
            body = await r.json()
        assert body["type"] == "body_too_large"
        assert "64 bytes" in body["message"]
    assert echo_backend.records == []
    lenient = await kairos_gateway(
        route(
            echo_backend, {"request": {"body_limit": 64, "on_oversize": "pass", "body": actions}}
        ),
        plugins=[kairos_transform],
    )
    for data in (big, chunks(big[:10], big[10:100], big[100:])):
        async with http.post(lenient.url + "/", data=data, headers=JSON) as r:
            assert r.status == 200
        assert echo_backend.records[-1].body == big  # forwarded whole and untouched


async def test_response_field_actions(kairos_gateway, echo_backend, http, route) -> None:
    config = {
        "response": {
            "body": [
                {"action": "remove", "path": "headers"},
                {"action": "rename", "path": "method", "to": "request.verb"},
                {"action": "set", "path": "request.id", "value": "$(request_id)"},
                {"action": "add", "path": "backend", "value": "not added: present"},
                {"action": "set", "path": "failed", "value": True, "when": {"status": ["4xx"]}},
            ]
        }
    }
    gw = await kairos_gateway(route(echo_backend, config), plugins=[kairos_transform])
    async with http.get(gw.url + "/r", headers={"X-Request-ID": "q-1"}) as response:
        assert response.status == 200
        raw = await response.read()
        assert response.headers["Content-Length"] == str(len(raw))
    assert json.loads(raw) == {
        "backend": "echo",
        "path": "/r",
        "raw_path": "/r",
        "body": "",
        "body_length": 0,
        "request": {"verb": "GET", "id": "q-1"},
    }
    async with http.get(gw.url + "/r", headers={"X-Echo-Status": "404"}) as response:
        assert response.status == 404
        assert (await response.json())["failed"] is True


async def test_invalid_response_json_is_a_502_or_passes(kairos_gateway, serve, http, route) -> None:
    backend = await serve(b"<html>oops</html>", {"Content-Type": "application/json"})
    actions = [{"action": "remove", "path": "secret"}]
    strict = await kairos_gateway(
        route(backend, {"response": {"body": actions}}), plugins=[kairos_transform]
    )
    async with http.get(strict.url + "/") as response:
        assert response.status == 502
        body = await response.json()
    assert body["type"] == "invalid_upstream_body"
    assert body["message"].startswith("upstream response body: not valid JSON")
    lenient = await kairos_gateway(
        route(backend, {"response": {"on_invalid": "pass", "body": actions}}),
        plugins=[kairos_transform],
    )
    async with http.get(lenient.url + "/") as response:
        assert response.status == 200
        assert await response.read() == b"<html>oops</html>"


async def test_response_body_over_the_limit(kairos_gateway, serve, http, route) -> None:
    big = json.dumps({"secret": 1, "data": "y" * 500}).encode()
    backend = await serve(big, {"Content-Type": "application/json"})
    actions = [{"action": "remove", "path": "secret"}]
    strict = await kairos_gateway(
        route(backend, {"response": {"body_limit": 100, "body": actions}}),
        plugins=[kairos_transform],
    )
    async with http.get(strict.url + "/") as response:
        assert response.status == 502
        assert (await response.json())["type"] == "upstream_body_too_large"
    lenient = await kairos_gateway(
        route(backend, {"response": {"body_limit": 100, "on_oversize": "pass", "body": actions}}),
        plugins=[kairos_transform],
    )
    async with http.get(lenient.url + "/") as response:
        assert response.status == 200
        assert await response.read() == big
