"""Zone routing, failover, health checks and configuration of the upstream DNS pools."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import dns.asyncquery
import dns.message
import dns.rcode
import pytest
import pytest_asyncio
from kairos_dns_testkit import DnsGateway, ZoneServer, dns_config

from kairos_core.config import ConfigError


async def udp(port: int, name: str, rdtype: str = "A") -> dns.message.Message:
    """Ask the gateway over UDP."""
    query = dns.message.make_query(name, rdtype)
    return await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=5)


def address(response: dns.message.Message) -> str:
    """The first address of the answer."""
    return str(response.answer[0][0])


def dead_port() -> int:
    """A UDP port nobody listens on (the kernel answers ICMP port unreachable)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BrokenUpstream(asyncio.DatagramProtocol):
    """Echoes each query back as an 'answer' that claims a record it does not contain."""

    transport: asyncio.DatagramTransport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(data[:2] + b"\x81\x80\x00\x01\x00\x01" + data[8:], addr)


@pytest_asyncio.fixture
async def broken_upstream() -> AsyncIterator[int]:
    """The port of a BrokenUpstream."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(BrokenUpstream, local_addr=("127.0.0.1", 0))
    yield transport.get_extra_info("sockname")[1]
    transport.close()


async def test_the_longest_matching_zone_picks_the_pool(
    zone: ZoneServer, corp_zone: ZoneServer, dns_gateway: DnsGateway
):
    pools = {"public": [zone.port], "corp": [corp_zone.port]}
    zones = {".": "public", "Corp.Internal": "corp"}
    _gw, listener = await dns_gateway(dns_config(pools, zones))
    port = listener.port
    assert address(await udp(port, "www.corp.internal.")) == "10.0.0.1"
    assert address(await udp(port, "www.example.test.")) == "192.0.2.1"
    assert (await udp(port, "www.xcorp.internal.")).rcode() == dns.rcode.REFUSED  # by public
    assert zone.count("www.xcorp.internal.") == 1
    assert corp_zone.count("www.corp.internal.") == 1
    assert zone.count("www.corp.internal.") == 0


async def test_names_outside_every_zone_are_refused_without_asking(
    zone: ZoneServer, dns_gateway: DnsGateway
):
    config = dns_config({"public": [zone.port]}, {"example.test.": "public"})
    _gw, listener = await dns_gateway(config)
    assert (await udp(listener.port, "www.other.test.")).rcode() == dns.rcode.REFUSED
    assert address(await udp(listener.port, "www.example.test.")) == "192.0.2.1"
    assert sum(zone.questions.values()) == 1


async def test_fails_over_to_the_next_backend_and_ejects_the_dead_one(
    zone: ZoneServer, dns_gateway: DnsGateway
):
    config = dns_config({"public": [dead_port(), zone.port]}, {".": "public"})
    config["upstreams"]["public"]["health_check"] = {"passive": {"max_failures": 2}}
    gw, listener = await dns_gateway(config)
    for name in ("www", "mail", "ns1", "slow", "txt", "short"):
        answer = await udp(listener.port, f"{name}.example.test.")
        assert answer.rcode() == dns.rcode.NOERROR
    dead, alive = gw.gateway.runtime.pools["public"].backends
    assert (dead.state, alive.state) == ("ejected", "up")
    errors = gw.gateway.metrics.snapshot()["kairos_dns_upstream_errors"]["values"]
    assert errors[("public", "unreachable")] == 2


async def test_a_silent_backend_times_out_and_the_next_one_answers(
    zone: ZoneServer, corp_zone: ZoneServer, dns_gateway: DnsGateway
):
    corp_zone.silent = True  # up, but never answers
    config = dns_config({"public": [corp_zone.port, zone.port]}, {".": "public"}, timeout=0.5)
    gw, listener = await dns_gateway(config)
    assert address(await udp(listener.port, "www.example.test.")) == "192.0.2.1"
    assert address(await udp(listener.port, "mail.example.test.")) == "192.0.2.25"
    errors = gw.gateway.metrics.snapshot()["kairos_dns_upstream_errors"]["values"]
    assert errors[("public", "timeout")] == 2  # round robin tried it first both times


async def test_a_malformed_upstream_answer_counts_as_a_failure(
    zone: ZoneServer, broken_upstream: int, dns_gateway: DnsGateway
):
    config = dns_config({"public": [broken_upstream, zone.port]}, {".": "public"})
    gw, listener = await dns_gateway(config)
    for name in ("www", "mail"):
        assert (await udp(listener.port, f"{name}.example.test.")).rcode() == dns.rcode.NOERROR
    errors = gw.gateway.metrics.snapshot()["kairos_dns_upstream_errors"]["values"]
    assert errors[("public", "malformed")] == 2  # tried first each time, then failed over


async def test_servfail_when_every_backend_is_down(dns_gateway: DnsGateway):
    config = dns_config({"public": [dead_port(), dead_port()]}, {".": "public"})
    gw, listener = await dns_gateway(config)
    answer = await udp(listener.port, "www.example.test.")
    assert answer.rcode() == dns.rcode.SERVFAIL
    assert answer.question[0].to_text() == "www.example.test. IN A"
    for _ in range(6):  # the circuit breakers open; answers stay SERVFAIL, promptly
        assert (await udp(listener.port, "www.example.test.")).rcode() == dns.rcode.SERVFAIL
    states = {b.state for b in gw.gateway.runtime.pools["public"].backends}
    assert states <= {"ejected", "circuit_open"}


def active(**overrides: Any) -> dict[str, Any]:
    """Fast active health checks."""
    return {
        "active": {
            "interval": 0.05,
            "timeout": 0.3,
            "healthy_threshold": 1,
            "unhealthy_threshold": 1,
            **overrides,
        }
    }


async def wait_for(condition: Any, timeout: float = 5.0) -> None:
    """Poll `condition()` until it is true."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def test_active_health_checks_ask_a_real_dns_question(
    zone: ZoneServer, corp_zone: ZoneServer, dns_gateway: DnsGateway
):
    config = dns_config(
        {"public": [zone.port, corp_zone.port]},
        {".": "public"},
        health_query={"name": "example.test.", "type": "SOA"},
    )
    config["upstreams"]["public"]["health_check"] = active()
    gw, listener = await dns_gateway(config)
    first, second = gw.gateway.runtime.pools["public"].backends
    # corp_zone is not authoritative for example.test.: REFUSED is not a healthy answer.
    # Both backends start healthy, so also wait until zone has been asked: the two checks
    # race, and corp_zone's REFUSED may land before zone's question does.
    await wait_for(lambda: (first.healthy, second.healthy) == (True, False))
    await wait_for(lambda: zone.count("example.test.", "SOA") >= 1)
    assert first.healthy
    zone.silent = True
    await wait_for(lambda: not first.healthy)
    zone.silent = False
    await wait_for(lambda: first.healthy)
    assert address(await udp(listener.port, "www.example.test.")) == "192.0.2.1"


async def test_reload_moves_the_listener_to_the_new_configuration(
    zone: ZoneServer, corp_zone: ZoneServer, dns_gateway: DnsGateway
):
    pools = {"public": [zone.port], "corp": [corp_zone.port]}
    gw, listener = await dns_gateway(dns_config(pools, {".": "public"}))
    port = listener.port
    assert (await udp(port, "www.corp.internal.")).rcode() == dns.rcode.REFUSED
    reloaded = dns_config(pools, {".": "public", "corp.internal.": "corp"}, tcp_idle_timeout=1)
    reloaded["listeners"][1]["port"] = port
    await gw.reload(reloaded)
    assert address(await udp(port, "www.corp.internal.")) == "10.0.0.1"
    assert listener.resolver.settings.zones == {".": "public", "corp.internal.": "corp"}
    await gw.reload(reloaded)  # same zones: the cache is carried over
    assert address(await udp(port, "www.corp.internal.")) == "10.0.0.1"
    assert corp_zone.count("www.corp.internal.") == 1


@pytest.mark.parametrize(
    ("listener_config", "upstreams", "message"),
    [
        (
            {"zones": {".": "nope"}},
            {},
            r"listeners\[1\]\.config: zones\['\.'\]: unknown upstream 'nope'",
        ),
        (
            {"zones": {".": "web"}},
            {"web": {"backends": [{"url": "http://127.0.0.1:1"}]}},
            r"upstream 'web' has http:// backends",
        ),
        ({}, {}, r"listeners\[1\]\.config: .*give at least one zone"),
        ({"zones": {"a..b": "x"}}, {}, r"listeners\[1\]\.config\.zones: .*invalid DNS name"),
        ({"zones": {".": "x"}, "udp": False, "tcp": False}, {}, r"enable udp, tcp or both"),
        ({"zones": {".": "x"}, "cache": {"min_ttl": 9, "max_ttl": 3}}, {}, r"min_ttl \(9\)"),
        ({"zones": {".": "x"}, "health_query": {"type": "BOGUS"}}, {}, r"unknown record type"),
        ({"zones": {".": "x"}, "rate_limit": {}}, {}, r"rate_limit\.per_second: "),
    ],
)
async def test_configuration_errors_name_the_field(
    kairos_gateway: Any, listener_config: dict[str, Any], upstreams: dict[str, Any], message: str
):
    from kairos_dns import DnsPlugin

    config = {
        "listeners": [
            {"host": "127.0.0.1", "port": 0},
            {"protocol": "dns", "port": 0, "config": listener_config},
        ],
        "upstreams": upstreams,
    }
    with pytest.raises(ConfigError, match=message):
        await kairos_gateway(config, plugins=[DnsPlugin()])


async def test_questions_in_flight_survive_a_reload(zone: ZoneServer, dns_gateway: DnsGateway):
    zone.delays["slow"] = 0.4
    config = dns_config({"public": [zone.port]}, {".": "public"})
    gw, listener = await dns_gateway(config)
    config["listeners"][1]["port"] = listener.port
    pending = asyncio.create_task(udp(listener.port, "slow.example.test."))
    await asyncio.sleep(0.1)  # the question is now waiting on the old configuration's socket
    await gw.reload(config)
    assert address(await pending) == "192.0.2.99"
    errors = gw.gateway.metrics.snapshot().get("kairos_dns_upstream_errors", {"values": {}})
    assert errors["values"] == {}


async def test_a_listener_dropped_from_the_configuration_keeps_answering(
    zone: ZoneServer, dns_gateway: DnsGateway
):
    config = dns_config({"public": [zone.port]}, {".": "public"})
    gw, listener = await dns_gateway(config)
    without = {**config, "listeners": config["listeners"][:1]}
    await gw.reload(without)  # the core restarts no listener on reload; this one stays as it was
    await asyncio.sleep(0.2)  # the old configuration retires
    assert address(await udp(listener.port, "www.example.test.")) == "192.0.2.1"
