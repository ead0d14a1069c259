"""cors end to end: preflights answered at the gateway, actual responses decorated, per origin."""

from __future__ import annotations

from typing import Any

import kairos_cors
import pytest
from aiohttp import web

from kairos_core.testing import Backend

APP = "https://app.example.com"


def cors_route(backend: Backend, cors: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "name": "api",
        "prefix": "/api",
        "upstream": {"backends": [{"url": backend.url}]},
        "plugins": [{"name": "cors", "config": cors}],
        **extra,
    }


STANDARD = {
    "allow_origins": [APP, "https://*.example.org", "http://localhost:*"],
    "allow_origin_regex": [r"https://pr-\d+\.preview\.example\.net"],
    "allow_methods": ["GET", "POST", "DELETE"],
    "allow_headers": ["Authorization", "X-Trace"],
    "expose_headers": ["X-Backend", "X-Request-ID"],
    "allow_credentials": True,
    "max_age": 300,
}


def preflight(origin: str, method: str = "DELETE", headers: str | None = None) -> dict[str, str]:
    out = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers is not None:
        out["Access-Control-Request-Headers"] = headers
    return out


@pytest.mark.parametrize(
    "origin",
    [
        APP,
        "https://shop.example.org",
        "https://a.b.example.org",
        "http://localhost:5173",
        "http://localhost",
        "https://pr-42.preview.example.net",
    ],
)
async def test_preflight_from_allowed_origins(kairos_gateway, echo_backend, http, origin) -> None:
    gw = await kairos_gateway(
        {"routes": [cors_route(echo_backend, STANDARD)]}, plugins=[kairos_cors]
    )
    headers = preflight(origin, "DELETE", "authorization, x-trace, content-type")
    async with http.options(gw.url + "/api/items/1", headers=headers) as response:
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Origin"] == origin
        assert response.headers["Access-Control-Allow-Credentials"] == "true"
        assert response.headers["Access-Control-Allow-Methods"] == "GET, POST, DELETE"
        assert response.headers["Access-Control-Allow-Headers"] == "Authorization, X-Trace"
        assert response.headers["Access-Control-Max-Age"] == "300"
        assert response.headers["Vary"] == "Origin"
        assert await response.read() == b""
    assert echo_backend.records == []  # answered at the gateway


@pytest.mark.parametrize(
    "origin",
    [
        "https://example.org",  # the wildcard needs a subdomain
        "http://shop.example.org",  # wrong scheme
        "https://shop.example.org.evil.test",
        "https://evilexample.org",
        "https://app.example.com:8443",  # exact origins include the port
        "https://pr-42.preview.example.net.evil.test",  # regexes must match the whole origin
        "null",
    ],
)
async def test_preflight_from_other_origins_is_refused_without_cors_headers(
    kairos_gateway, echo_backend, http, origin
) -> None:
    gw = await kairos_gateway(
        {"routes": [cors_route(echo_backend, STANDARD)]}, plugins=[kairos_cors]
    )
    async with http.options(gw.url + "/api/items/1", headers=preflight(origin)) as response:
        assert response.status == 403
        body = await response.json()
        assert body["type"] == "cors_origin_not_allowed"
        assert origin in body["message"]
        assert not [h for h in response.headers if h.lower().startswith("access-control-")]
        assert response.headers["Vary"] == "Origin"
    assert echo_backend.records == []


async def test_preflight_refuses_unlisted_method_and_header(
    kairos_gateway, echo_backend, http
) -> None:
    gw = await kairos_gateway(
        {"routes": [cors_route(echo_backend, STANDARD)]}, plugins=[kairos_cors]
    )
    async with http.options(gw.url + "/api/x", headers=preflight(APP, "PUT")) as response:
        assert response.status == 403
        assert (await response.json())["type"] == "cors_method_not_allowed"
        assert "Access-Control-Allow-Origin" not in response.headers
    headers = preflight(APP, "GET", "X-Trace, X-Secret")
    async with http.options(gw.url + "/api/x", headers=headers) as response:
        assert response.status == 403
        body = await response.json()
        assert body["type"] == "cors_header_not_allowed"
        assert "x-secret" in body["message"]


async def test_actual_requests_from_several_origins(kairos_gateway, backend_factory, http) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response(
            {"origin": request.headers.get("Origin")},
            headers={
                "Vary": "Accept-Encoding",
                "Access-Control-Allow-Origin": "*",  # the backend's own CORS is replaced
                "X-Backend": "b1",
            },
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    backend = await backend_factory(app)
    gw = await kairos_gateway({"routes": [cors_route(backend, STANDARD)]}, plugins=[kairos_cors])

    async with http.post(gw.url + "/api/items", headers={"Origin": APP}) as response:
        assert response.status == 200
        assert (await response.json())["origin"] == APP  # Origin reaches the backend
        assert response.headers["Access-Control-Allow-Origin"] == APP
        assert response.headers["Access-Control-Allow-Credentials"] == "true"
        assert response.headers["Access-Control-Expose-Headers"] == "X-Backend, X-Request-ID"
        assert response.headers["Vary"] == "Accept-Encoding, Origin"

    async with http.get(gw.url + "/api/items", headers={"Origin": "https://a.example.org"}) as r:
        assert r.headers["Access-Control-Allow-Origin"] == "https://a.example.org"

    for headers in ({"Origin": "https://evil.test"}, {}):
        async with http.get(gw.url + "/api/items", headers=headers) as response:
            assert response.status == 200  # served, but the browser gets no CORS permission
            assert not [h for h in response.headers if h.lower().startswith("access-control-")]
            assert response.headers["Vary"] == "Accept-Encoding, Origin"


async def test_options_without_request_method_is_proxied(
    kairos_gateway, echo_backend, http
) -> None:
    gw = await kairos_gateway(
        {"routes": [cors_route(echo_backend, STANDARD)]}, plugins=[kairos_cors]
    )
    async with http.options(gw.url + "/api/x", headers={"Origin": APP}) as response:
        assert response.status == 200
        assert response.headers["Access-Control-Allow-Origin"] == APP
    assert [r.method for r in echo_backend.records] == ["OPTIONS"]


async def test_any_origin_without_credentials_is_a_constant_star(
    kairos_gateway, echo_backend, http
) -> None:
    gw = await kairos_gateway(
        {"routes": [cors_route(echo_backend, {"allow_origins": ["*"], "max_age": None})]},
        plugins=[kairos_cors],
    )
    for headers in ({"Origin": "https://anyone.test"}, {}):
        async with http.get(gw.url + "/api/x", headers=headers) as response:
            assert response.headers["Access-Control-Allow-Origin"] == "*"
            assert "Vary" not in response.headers
    async with http.options(gw.url + "/api/x", headers=preflight("https://x.test", "PUT")) as r:
        assert r.status == 204
        assert r.headers["Access-Control-Allow-Origin"] == "*"
        assert "Access-Control-Max-Age" not in r.headers
        assert "Access-Control-Allow-Credentials" not in r.headers


async def test_any_origin_with_credentials_reflects_and_wildcards_reflect(
    kairos_gateway, echo_backend, http
) -> None:
    cors = {
        "allow_origins": ["*"],
        "allow_credentials": True,
        "allow_methods": ["*"],
        "allow_headers": ["*"],
    }
    gw = await kairos_gateway({"routes": [cors_route(echo_backend, cors)]}, plugins=[kairos_cors])
    headers = preflight("https://x.test", "PURGE", "Authorization, X-Anything")
    async with http.options(gw.url + "/api/x", headers=headers) as response:
        assert response.status == 204
        # `*` is not a wildcard on credentialed requests (and never covers Authorization).
        assert response.headers["Access-Control-Allow-Origin"] == "https://x.test"
        assert response.headers["Access-Control-Allow-Methods"] == "PURGE"
        assert response.headers["Access-Control-Allow-Headers"] == "Authorization, X-Anything"
        assert response.headers["Vary"] == (
            "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
        )
    async with http.get(gw.url + "/api/x", headers={"Origin": "https://y.test"}) as response:
        assert response.headers["Access-Control-Allow-Origin"] == "https://y.test"
        assert response.headers["Vary"] == "Origin"


async def test_preflight_is_answered_before_auth(
    kairos_gateway, echo_backend, http, header_auth
) -> None:
    route = cors_route(echo_backend, STANDARD)
    route["plugins"].append({"name": "test-user"})
    gw = await kairos_gateway({"routes": [route]}, plugins=[kairos_cors, header_auth])
    async with http.options(gw.url + "/api/x", headers=preflight(APP, "GET")) as response:
        assert response.status == 204
    async with http.get(gw.url + "/api/x", headers={"Origin": APP}) as response:
        assert response.status == 401  # auth refuses, and the browser may read why
        assert response.headers["Access-Control-Allow-Origin"] == APP
    headers = {"Origin": APP, "X-Test-User": "ann"}
    async with http.get(gw.url + "/api/x", headers=headers) as response:
        assert response.status == 200
        assert response.headers["Access-Control-Allow-Origin"] == APP


async def test_global_cors_with_route_override(kairos_gateway, echo_backend, http) -> None:
    other = {
        "name": "other",
        "prefix": "/other",
        "methods": ["GET"],
        "upstream": {"backends": [{"url": echo_backend.url}]},
        "plugins": [{"name": "cors", "enabled": False}],
    }
    gw = await kairos_gateway(
        {
            "plugins": [{"name": "cors", "config": {"allow_origins": [APP]}}],
            "routes": [
                cors_route(echo_backend, {"allow_origins": ["https://admin.example.com"]}),
                other,
                {
                    "name": "plain",
                    "prefix": "/plain",
                    "upstream": {"backends": [{"url": echo_backend.url}]},
                },
            ],
        },
        plugins=[kairos_cors],
    )
    async with http.get(gw.url + "/plain/x", headers={"Origin": APP}) as response:
        assert response.headers["Access-Control-Allow-Origin"] == APP  # the global entry
    async with http.get(gw.url + "/api/x", headers={"Origin": APP}) as response:
        assert "Access-Control-Allow-Origin" not in response.headers  # the route's entry wins
    async with http.get(gw.url + "/other/x", headers={"Origin": APP}) as response:
        assert "Access-Control-Allow-Origin" not in response.headers  # disabled there


async def test_route_without_options_method_is_a_config_error(kairos_gateway, echo_backend) -> None:
    route = cors_route(echo_backend, STANDARD, methods=["GET", "POST"])
    with pytest.raises(Exception, match="add OPTIONS to its `methods`"):
        await kairos_gateway({"routes": [route]}, plugins=[kairos_cors])
    route = {
        "name": "gets",
        "path": "/g",
        "methods": ["GET"],
        "upstream": {"backends": [{"url": echo_backend.url}]},
    }
    with pytest.raises(Exception, match=r"route 'gets' allows only GET.*or disable cors"):
        await kairos_gateway(
            {"plugins": [{"name": "cors", "config": {"allow_origins": [APP]}}], "routes": [route]},
            plugins=[kairos_cors],
        )


@pytest.mark.parametrize(
    ("cors", "message"),
    [
        ({"allow_origins": ["https://app.example.com/"]}, "drop the trailing '/'"),
        ({"allow_origins": ["app.example.com"]}, "is not an origin"),
        ({"allow_origin_regex": ["https://(unclosed"]}, "invalid regular expression"),
        ({"allow_origins": [APP], "allow_headers": ["X Bad"]}, "not a valid header name"),
        ({}, "set `allow_origins` and/or `allow_origin_regex`"),
    ],
)
async def test_bad_settings_are_reported(kairos_gateway, echo_backend, cors, message) -> None:
    with pytest.raises(Exception, match=r"routes\[0\]\.plugins\[0\]\.config.*" + message):
        await kairos_gateway({"routes": [cors_route(echo_backend, cors)]}, plugins=[kairos_cors])
