"""The `doh` stage: RFC 8484 GET and POST through the same resolver and cache as the listener."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import aiohttp
import dns.asyncquery
import dns.message
import dns.rcode
import pytest
from kairos_dns_testkit import BIG_TXT, DnsGateway, ZoneServer, dns_config

from kairos_core import (
    AuthFailure,
    AuthPlugin,
    Consumer,
    Handler,
    RequestContext,
    Response,
    StagePlugin,
    error_response,
    hookimpl,
)
from kairos_core.config import ConfigError

MEDIA = "application/dns-message"


def doh_config(
    zone: ZoneServer, doh: dict[str, Any] | None = None, extra: list[Any] | None = None
) -> dict[str, Any]:
    """A DNS listener named `dns` and a `/dns-query` route whose doh stage shares it."""
    config = dns_config({"public": [zone.port]}, {".": "public"})
    plugins = [*(extra or []), {"name": "doh", "config": doh or {"listener": "dns"}}]
    config["routes"] = [{"path": "/dns-query", "upstream": "public", "plugins": plugins}]
    return config


def wire(name: str, rdtype: str = "A") -> bytes:
    """A DoH query: ID 0 as RFC 8484 recommends."""
    query = dns.message.make_query(name, rdtype)
    query.id = 0
    return query.to_wire()


def b64(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def doh_get(
    http: aiohttp.ClientSession, url: str, data: bytes, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    """GET /dns-query?dns=..."""
    async with http.get(url + "/dns-query", params={"dns": b64(data)}, headers=headers) as r:
        return r.status, dict(r.headers), await r.read()


async def doh_post(
    http: aiohttp.ClientSession, url: str, data: bytes, content_type: str = MEDIA, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    """POST /dns-query."""
    headers = {"Content-Type": content_type, **headers}
    async with http.post(url + "/dns-query", data=data, headers=headers) as r:
        return r.status, dict(r.headers), await r.read()


async def test_get_and_post_answer_through_the_listeners_cache(
    zone: ZoneServer, dns_gateway: DnsGateway, http: aiohttp.ClientSession
):
    gw, _listener = await dns_gateway(doh_config(zone))
    status, headers, body = await doh_get(http, gw.url, wire("WWW.example.test."))
    assert (status, headers["Content-Type"], headers["Cache-Control"]) == (
        200,
        MEDIA,
        "max-age=300",
    )
    answer = dns.message.from_wire(body)
    assert answer.id == 0
    assert answer.question[0].name.to_text() == "WWW.example.test."
    assert str(answer.answer[0][0]) == "192.0.2.1"
    status, headers, body = await doh_post(http, gw.url, wire("www.example.test."))
    assert status == 200
    assert str(dns.message.from_wire(body).answer[0][0]) == "192.0.2.1"
    assert zone.count("www.example.test.") == 1  # POST was a cache hit
    status, headers, body = await doh_post(http, gw.url, wire("big.example.test.", "TXT"))
    assert len(dns.message.from_wire(body).answer[0]) == len(BIG_TXT)  # no UDP size limit
    status, headers, body = await doh_get(http, gw.url, wire("nope.example.test."))
    assert dns.message.from_wire(body).rcode() == dns.rcode.NXDOMAIN
    assert headers["Cache-Control"] == "max-age=60"
    queries = gw.gateway.metrics.snapshot()["kairos_dns_queries"]["values"]
    assert queries[("doh", "A", "NOERROR")] == 2


async def test_listener_and_doh_share_one_cache(
    zone: ZoneServer, dns_gateway: DnsGateway, http: aiohttp.ClientSession
):
    gw, listener = await dns_gateway(doh_config(zone))
    query = dns.message.make_query("mail.example.test.", "A")
    await dns.asyncquery.udp(query, "127.0.0.1", port=listener.port, timeout=3)
    status, _headers, _body = await doh_get(http, gw.url, wire("mail.example.test."))
    assert status == 200
    assert zone.count("mail.example.test.") == 1


async def test_doh_without_a_listener_uses_the_routes_pool(
    zone: ZoneServer, kairos_gateway: Any, http: aiohttp.ClientSession
):
    from kairos_dns import DnsPlugin

    config = {
        "routes": [
            {
                "path": "/dns-query",
                "upstream": {"backends": [{"url": f"dns://127.0.0.1:{zone.port}"}]},
                "plugins": [{"name": "doh", "config": {"cache": {"max_ttl": 100}}}],
            }
        ]
    }
    gw = await kairos_gateway(config, plugins=[DnsPlugin()])
    status, headers, body = await doh_get(http, gw.url, wire("www.example.test."))
    assert (status, headers["Cache-Control"]) == (200, "max-age=100")
    assert dns.message.from_wire(body).answer[0].ttl == 100


@pytest.mark.parametrize(
    ("request_kind", "status", "fragment"),
    [
        ("no-param", 400, "missing `dns`"),
        ("bad-base64", 400, "base64url"),
        ("not-dns", 400, "not a DNS query"),
        ("wrong-type", 415, MEDIA),
        ("too-big", 413, "65535"),
        ("put", 405, "GET or POST"),
    ],
)
async def test_bad_requests_get_clear_http_errors(
    zone: ZoneServer,
    dns_gateway: DnsGateway,
    http: aiohttp.ClientSession,
    request_kind: str,
    status: int,
    fragment: str,
):
    gw, _listener = await dns_gateway(doh_config(zone))
    url = gw.url + "/dns-query"
    calls: dict[str, Callable[[], Any]] = {
        "no-param": lambda: http.get(url),
        "bad-base64": lambda: http.get(url, params={"dns": "not*base64!"}),
        "not-dns": lambda: http.get(url, params={"dns": b64(b"\x00\x01garbage")}),
        "wrong-type": lambda: http.post(
            url, data=wire("www.example.test."), headers={"Content-Type": "text/plain"}
        ),
        "too-big": lambda: http.post(url, data=b"\x00" * 70000, headers={"Content-Type": MEDIA}),
        "put": lambda: http.put(url, data=b""),
    }
    async with calls[request_kind]() as response:
        assert response.status == status
        body = await response.json()
        if request_kind == "put":
            assert response.headers["Allow"] == "GET, POST"
    assert fragment in body["message"]
    assert sum(zone.questions.values()) == 0


class KeyAuth:
    """Accepts `X-Key: s3cret` as consumer alice."""

    challenge = "Key"

    async def authenticate(self, ctx: RequestContext) -> Consumer | None:
        key = ctx.request.headers.get("X-Key")
        if key is None:
            return None
        if key != "s3cret":
            raise AuthFailure("wrong key")
        return Consumer("alice", {})


def two_requests(config: Any, context: Any) -> Any:
    """Allows two requests per route, then 429 (a stand-in for a rate-limit plugin)."""
    seen = [0]

    async def stage(ctx: RequestContext, call_next: Handler) -> Response:
        seen[0] += 1
        if seen[0] > 2:
            return error_response(429, "rate_limited", "slow down", ctx.request_id)
        return await call_next(ctx)

    return stage


class RoutePlugins:
    @hookimpl
    def register_authenticators(self, register: Any) -> None:
        register(AuthPlugin(name="test-key", build=lambda config, context: KeyAuth()))

    @hookimpl
    def register_rate_limiters(self, register: Any) -> None:
        register(StagePlugin(name="test-two", build=two_requests))


async def test_the_routes_auth_and_limits_run_before_doh(
    zone: ZoneServer, dns_gateway: DnsGateway, http: aiohttp.ClientSession
):
    config = doh_config(zone, extra=[{"name": "test-key"}, {"name": "test-two"}])
    gw, _listener = await dns_gateway(config, RoutePlugins())
    query = wire("www.example.test.")
    assert (await doh_get(http, gw.url, query))[0] == 401
    assert (await doh_get(http, gw.url, query, **{"X-Key": "wrong"}))[0] == 401
    assert sum(zone.questions.values()) == 0
    assert (await doh_get(http, gw.url, query, **{"X-Key": "s3cret"}))[0] == 200
    assert (await doh_post(http, gw.url, query, **{"X-Key": "s3cret"}))[0] == 200
    assert (await doh_get(http, gw.url, query, **{"X-Key": "s3cret"}))[0] == 429


@pytest.mark.parametrize(
    ("doh", "message"),
    [
        ({"listener": "nope"}, r"routes\[0\]\.plugins\[0\]\.config: .*no `dns` listener is named"),
        ({"listener": "dns", "zones": {".": "public"}}, r"zones: these come from listener 'dns'"),
        ({"zones": {".": "missing"}}, r"unknown upstream 'missing'"),
    ],
)
async def test_doh_configuration_errors(
    zone: ZoneServer, dns_gateway: DnsGateway, doh: dict[str, Any], message: str
):
    with pytest.raises(ConfigError, match=message):
        await dns_gateway(doh_config(zone, doh))
