"""The answer cache through the listener: TTL countdown, RFC 2308 negatives, caps, bounds, purge."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import dns.asyncquery
import dns.message
import dns.rcode
import dns.rdatatype
from kairos_dns_testkit import DnsGateway, FakeClock, ZoneServer, dns_config


async def udp(port: int, name: str, rdtype: str = "A") -> dns.message.Message:
    """Ask the gateway over UDP."""
    query = dns.message.make_query(name, rdtype)
    return await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=3)


def ttls(response: dns.message.Message) -> list[int]:
    """TTLs of the answer and authority sections."""
    return [rrset.ttl for rrset in response.answer + response.authority]


async def test_ttls_count_down_until_the_answer_expires(
    zone: ZoneServer, dns_gateway: DnsGateway, clock: FakeClock
):
    _gw, listener = await dns_gateway(dns_config({"public": [zone.port]}, {".": "public"}))
    port = listener.port
    assert ttls(await udp(port, "www.example.test.")) == [300]
    clock.advance(100.4)
    assert ttls(await udp(port, "www.example.test.")) == [200]
    clock.advance(199.0)
    assert ttls(await udp(port, "www.example.test.")) == [1]
    assert zone.count("www.example.test.") == 1
    clock.advance(1.0)  # 300 s after it was stored: expired
    assert ttls(await udp(port, "www.example.test.")) == [300]
    assert zone.count("www.example.test.") == 2


async def test_negative_answers_live_as_long_as_the_soa_says(
    zone: ZoneServer, dns_gateway: DnsGateway, clock: FakeClock
):
    _gw, listener = await dns_gateway(dns_config({"public": [zone.port]}, {".": "public"}))
    port = listener.port
    missing = await udp(port, "nope.example.test.")
    assert missing.rcode() == dns.rcode.NXDOMAIN
    assert ttls(missing) == [60]  # min(SOA TTL 300, SOA MINIMUM 60)
    nodata = await udp(port, "www.example.test.", "MX")
    assert (nodata.rcode(), nodata.answer, ttls(nodata)) == (dns.rcode.NOERROR, [], [60])
    clock.advance(30)
    assert ttls(await udp(port, "nope.example.test.")) == [30]
    assert ttls(await udp(port, "www.example.test.", "MX")) == [30]
    assert zone.count("nope.example.test.") == 1
    clock.advance(30)
    assert (await udp(port, "nope.example.test.")).rcode() == dns.rcode.NXDOMAIN
    assert zone.count("nope.example.test.") == 2


async def test_min_and_max_ttl_caps(zone: ZoneServer, dns_gateway: DnsGateway, clock: FakeClock):
    cache = {"min_ttl": 30, "max_ttl": 120, "max_negative_ttl": 10}
    config = dns_config({"public": [zone.port]}, {".": "public"}, cache=cache)
    _gw, listener = await dns_gateway(config)
    port = listener.port
    assert ttls(await udp(port, "short.example.test.")) == [30]  # 5 raised to min_ttl
    assert ttls(await udp(port, "www.example.test.")) == [120]  # 300 lowered to max_ttl
    assert ttls(await udp(port, "nope.example.test.")) == [10]  # 60 lowered to the cap
    clock.advance(29)
    assert ttls(await udp(port, "short.example.test.")) == [1]
    assert zone.count("short.example.test.") == 1
    clock.advance(1)
    await udp(port, "short.example.test.")
    assert zone.count("short.example.test.") == 2


async def test_the_cache_is_bounded(zone: ZoneServer, dns_gateway: DnsGateway):
    config = dns_config({"public": [zone.port]}, {".": "public"}, cache={"max_entries": 2})
    _gw, listener = await dns_gateway(config)
    port = listener.port
    for name in ("www", "mail", "www", "ns1", "www", "mail"):
        await udp(port, f"{name}.example.test.")
    # www stayed (recently used); mail was evicted by ns1 and had to be asked again.
    assert (zone.count("www.example.test."), zone.count("mail.example.test.")) == (1, 2)
    assert len(listener.resolver.cache or ()) == 2


async def test_cache_can_be_disabled(zone: ZoneServer, dns_gateway: DnsGateway):
    config = dns_config({"public": [zone.port]}, {".": "public"}, cache={"enabled": False})
    _gw, listener = await dns_gateway(config)
    for _ in range(3):
        await udp(listener.port, "www.example.test.")
    assert zone.count("www.example.test.") == 3


async def test_concurrent_identical_questions_share_one_upstream_query(
    zone: ZoneServer, dns_gateway: DnsGateway
):
    zone.delays["slow"] = 0.2
    _gw, listener = await dns_gateway(dns_config({"public": [zone.port]}, {".": "public"}))
    answers = await asyncio.gather(*(udp(listener.port, "slow.example.test.") for _ in range(10)))
    assert {a.answer[0][0].to_text() for a in answers} == {"192.0.2.99"}
    assert zone.count("slow.example.test.") == 1


async def purge(http: aiohttp.ClientSession, admin_url: str, body: Any) -> tuple[int, Any]:
    """POST /dns/cache/purge."""
    async with http.post(admin_url + "/dns/cache/purge", json=body) as response:
        return response.status, await response.json()


async def test_purge_through_the_admin_api(
    zone: ZoneServer, dns_gateway: DnsGateway, http: aiohttp.ClientSession
):
    gw, listener = await dns_gateway(dns_config({"public": [zone.port]}, {".": "public"}))
    assert gw.admin_url is not None
    port = listener.port
    names = [("www", "A"), ("www", "AAAA"), ("mail", "A"), ("txt", "TXT")]
    for label, rdtype in names:
        await udp(port, f"{label}.example.test.", rdtype)
    assert await purge(http, gw.admin_url, {"name": "WWW.example.test", "type": "AAAA"}) == (
        200,
        {"removed": 1, "workers": 1},
    )
    assert await purge(http, gw.admin_url, {"zone": "www.example.test."}) == (
        200,
        {"removed": 1, "workers": 1},
    )
    assert await purge(http, gw.admin_url, {"all": True}) == (200, {"removed": 2, "workers": 1})
    for label, rdtype in names:
        await udp(port, f"{label}.example.test.", rdtype)
        assert zone.count(f"{label}.example.test.", rdtype) == 2
    assert await purge(http, gw.admin_url, {"zone": "example.test"}) == (
        200,
        {"removed": 4, "workers": 1},
    )


async def test_bad_purge_requests(
    zone: ZoneServer, dns_gateway: DnsGateway, http: aiohttp.ClientSession
):
    gw, _listener = await dns_gateway(dns_config({"public": [zone.port]}, {".": "public"}))
    assert gw.admin_url is not None
    for body, fragment in [
        ({}, "exactly one"),
        ({"all": True, "name": "a."}, "exactly one"),
        ({"name": "a.", "zone": "b."}, "exactly one"),
        ({"all": True, "type": "A"}, "`type` goes with"),
        ({"name": "a.", "type": "NOPE"}, "unknown record type"),
        ({"name": "a..b"}, "invalid DNS name"),
        ({"nam": "a."}, "nam"),
        ([1], "JSON object"),
    ]:
        status, answer = await purge(http, gw.admin_url, body)
        assert status == 400, body
        assert fragment in answer["message"], (body, answer)


async def test_purge_without_dns_configured(
    kairos_gateway: Any, echo_backend: Any, http: aiohttp.ClientSession
):
    from kairos_dns import DnsPlugin

    config = {"routes": [{"prefix": "/", "upstream": {"backends": [{"url": echo_backend.url}]}}]}
    gw = await kairos_gateway(config, plugins=[DnsPlugin()])
    status, body = await purge(http, gw.admin_url, {"all": True})
    assert (status, body["type"]) == (404, "no_dns")


async def test_metrics_count_queries_hits_and_upstream_latency(
    zone: ZoneServer, dns_gateway: DnsGateway
):
    gw, listener = await dns_gateway(dns_config({"public": [zone.port]}, {".": "public"}))
    for name in ("www", "www", "nope"):
        await udp(listener.port, f"{name}.example.test.")
    snapshot = gw.gateway.metrics.snapshot()
    queries = snapshot["kairos_dns_queries"]["values"]
    assert queries[("udp", "A", "NOERROR")] == 2
    assert queries[("udp", "A", "NXDOMAIN")] == 1
    assert snapshot["kairos_dns_cache_hits"]["values"][("udp",)] == 1
    assert snapshot["kairos_dns_cache_misses"]["values"][("udp",)] == 2
    counts, total = snapshot["kairos_dns_upstream_seconds"]["values"][("public", "udp")]
    assert sum(counts) == 2
    assert total > 0
    assert snapshot["kairos_dns_cache_entries"]["values"][("listener:dns",)] == 2
