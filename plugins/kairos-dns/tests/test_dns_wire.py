"""The byte-level pieces: query parsing, answer walking, cookies, cache purges, limits, steering."""

from __future__ import annotations

import socket
import time

import dns.asyncquery
import dns.edns
import dns.message
import dns.rcode
import dns.rrset
import pytest
from kairos_dns.cache import DnsCache
from kairos_dns.config import CacheSettings, RateLimitSettings, name_wire
from kairos_dns.ratelimit import ALLOW, DROP, SLIP, ClientRateLimiter
from kairos_dns.steering import steer_by_client
from kairos_dns.wire import (
    FORMERR,
    NOTIMP,
    Malformed,
    parse_query,
    truncated_reply,
    walk,
    without_cookie,
)
from kairos_dns_testkit import DnsGateway, FakeClock, ZoneServer, dns_config

ECS = dns.edns.ECSOption("192.0.2.0", 24)
COOKIE = dns.edns.GenericOption(dns.edns.COOKIE, b"clientck")


def query_wire(name: str = "WWW.Example.Test.", rdtype: str = "A", **kwargs: object) -> bytes:
    """A query in wire form."""
    query = dns.message.make_query(name, rdtype, **kwargs)  # type: ignore[arg-type]
    query.id = 0x1234
    return query.to_wire()


def test_parse_query_reads_what_the_gateway_needs() -> None:
    plain = parse_query(query_wire())
    assert plain.id_bytes == b"\x12\x34"
    assert plain.qname == b"\x03WWW\x07Example\x04Test\x00"
    assert plain.key.startswith(b"\x03www\x07example\x04test\x00\x00\x01\x00\x01")
    assert (plain.edns, plain.udp_size, plain.do, plain.ecs) == (False, 512, False, False)
    assert plain.question == plain.qname + b"\x00\x01\x00\x01"
    edns = parse_query(query_wire(use_edns=0, payload=4096, want_dnssec=True, options=[ECS]))
    assert (edns.edns, edns.udp_size, edns.do, edns.ecs) == (True, 4096, True, True)
    assert edns.key != plain.key  # EDNS and DO answers are cached apart
    https = parse_query(query_wire(rdtype="HTTPS"))  # type 65 = "A" must not be case-folded
    assert https.key[len(https.qname) : len(https.qname) + 2] == b"\x00\x41"


@pytest.mark.parametrize(
    ("mangle", "rcode"),
    [
        (lambda w: w[:11], None),  # shorter than a header: dropped
        (lambda w: w[:2] + bytes([w[2] | 0x80]) + w[3:], None),  # a response: dropped
        (lambda w: w[:2] + bytes([(w[2] & 0x87) | 0x28]) + w[3:], NOTIMP),  # opcode 5
        (lambda w: w[:4] + b"\x00\x00" + w[6:], FORMERR),  # no question
        (lambda w: w + b"\x00", FORMERR),  # trailing byte
        (lambda w: w[:12] + b"\xc0\x0c" + w[-4:], FORMERR),  # compressed question name
        (lambda w: w[:-2], FORMERR),  # cut short
        (lambda w: w[:12] + b"\x00\x00\x29\x00\x01", FORMERR),  # OPT as the question type
    ],
)
def test_malformed_queries(mangle: object, rcode: int | None) -> None:
    wire = query_wire()
    with pytest.raises(Malformed) as caught:
        parse_query(mangle(wire))  # type: ignore[operator]
    if rcode is None:
        assert caught.value.reply is None
    else:
        assert caught.value.reply is not None
        reply = dns.message.from_wire(caught.value.reply, question_only=True)
        assert (reply.id, reply.rcode()) == (0x1234, rcode)


def test_two_opt_records_are_formerr() -> None:
    wire = bytearray(query_wire(use_edns=0))
    opt = bytes(wire[-11:])
    wire[11] = 2  # ARCOUNT
    with pytest.raises(Malformed) as caught:
        parse_query(bytes(wire) + opt)
    assert caught.value.reply is not None


def answer_with(query: dns.message.Message, *records: str, rcode: int = 0) -> bytes:
    """An answer to `query` with the given records (`section name ttl type rdata`)."""
    response = dns.message.make_response(query)
    response.set_rcode(rcode)
    for text in records:
        section, rest = text.split(" ", 1)
        name, ttl, rdtype, rdata = rest.split(" ", 3)
        rrset = dns.rrset.from_text(name, int(ttl), "IN", rdtype, rdata)
        getattr(response, section).append(rrset)
    return response.to_wire()


SOA = "authority example.test. 300 SOA ns1.example.test. host.example.test. 1 2 3 4 45"


def test_walk_finds_ttls_and_the_negative_ttl() -> None:
    query = dns.message.make_query("nope.example.test.", "A", use_edns=0)
    layout = walk(answer_with(query, SOA, rcode=dns.rcode.NXDOMAIN))
    assert (layout.rcode, layout.answers, layout.ttls) == (3, 0, [300])
    assert layout.negative_ttl == 45
    assert layout.opt_start is not None
    with pytest.raises(Malformed):
        walk(answer_with(query, SOA)[:-3])


def test_client_cookies_are_not_cached_for_others() -> None:
    query = dns.message.make_query("www.example.test.", "A", use_edns=0)
    response = dns.message.make_response(query)
    response.use_edns(0, 0, 1232, options=[COOKIE, dns.edns.GenericOption(3, b"ns")])
    wire = response.to_wire()
    stripped = dns.message.from_wire(without_cookie(wire, walk(wire)))
    assert [o.otype for o in stripped.options] == [3]


def test_truncated_reply_keeps_the_question_and_says_tc() -> None:
    raw = query_wire(use_edns=0, payload=700)
    query = parse_query(raw)
    reply = dns.message.from_wire(
        truncated_reply(query, b"\x00" * 2 + b"\x81\x80" + b"\x00" * 8, 1232)
    )
    assert reply.flags & dns.flags.TC
    assert reply.question[0].name.to_text() == "WWW.Example.Test."
    assert reply.payload == 1232


def test_purging_a_zone_stops_at_label_boundaries() -> None:
    cache = DnsCache(CacheSettings(), FakeClock())
    for name in ("example.test.", "www.example.test.", "xexample.test.", "a.b.example.test."):
        raw = query_wire(name)
        message = dns.message.from_wire(raw)
        answer = answer_with(message, f"answer {name} 60 A 192.0.2.1")
        assert cache.store(parse_query(raw), answer, walk(answer)) is not None
    assert cache.purge(name_wire("example.test."), zone=True) == 3
    assert [parse_query(query_wire("xexample.test.")).key] == list(cache.entries)
    assert cache.bytes == len(next(iter(cache.entries.values())).wire)


def test_uncacheable_answers() -> None:
    cache = DnsCache(CacheSettings(), FakeClock())
    raw = query_wire("www.example.test.")
    message = dns.message.from_wire(raw)
    for answer in (
        answer_with(message, rcode=dns.rcode.NXDOMAIN),  # no SOA: RFC 2308 says do not cache
        answer_with(message, "answer www.example.test. 60 A 192.0.2.1", rcode=dns.rcode.SERVFAIL),
        answer_with(message, "answer www.example.test. 0 A 192.0.2.1"),  # TTL 0
    ):
        assert cache.store(parse_query(raw), answer, walk(answer)) is None
    assert len(cache) == 0


def test_rate_limiter_forgets_idle_clients_when_full() -> None:
    clock = FakeClock()
    limiter = ClientRateLimiter(RateLimitSettings(per_second=1, burst=1, max_clients=2), clock)
    assert [limiter.check("a"), limiter.check("a"), limiter.check("a")] == [ALLOW, DROP, SLIP]
    limiter.check("b")
    clock.advance(5)
    limiter.check("c")  # full: a and b have refilled, so they are forgotten
    assert set(limiter.buckets) == {"c"}
    for name in "defg":
        limiter.check(name)
    assert len(limiter.buckets) == 2


def test_kernel_steering_sends_each_address_to_one_socket() -> None:
    group = []
    for _ in range(2):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", group[0].getsockname()[1] if group else 0))
        sock.setblocking(False)
        group.append(sock)
    try:
        if not steer_by_client(group[0], 2):
            pytest.skip("this kernel cannot attach reuseport BPF programs")
        port = group[0].getsockname()[1]
        for source in ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"):
            for _ in range(10):  # ten different source ports per address
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
                    client.bind((source, 0))
                    client.sendto(b"x", ("127.0.0.1", port))
        time.sleep(0.05)
        seen: list[set[str]] = []
        for sock in group:
            addresses = set()
            while True:
                try:
                    addresses.add(sock.recvfrom(16)[1][0])
                except BlockingIOError:
                    break
            seen.append(addresses)
        assert seen[0] | seen[1] == {"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"}
        assert not seen[0] & seen[1]  # no address was split across the two sockets
    finally:
        for sock in group:
            sock.close()


async def test_answers_with_client_subnet_are_not_cached_and_cookies_stay_private(
    zone: ZoneServer, dns_gateway: DnsGateway
) -> None:
    _gw, listener = await dns_gateway(dns_config({"public": [zone.port]}, {".": "public"}))

    async def ask(*options: dns.edns.Option) -> dns.message.Message:
        query = dns.message.make_query("www.example.test.", "A", use_edns=0, options=list(options))
        return await dns.asyncquery.udp(query, "127.0.0.1", port=listener.port, timeout=3)

    await ask(ECS)
    await ask(ECS)
    assert zone.count("www.example.test.") == 2  # client-specific: never from the cache
    first = await ask(COOKIE)
    assert dns.edns.COOKIE in [o.otype for o in first.options]  # its own cookie comes back
    second = await ask()
    assert dns.edns.COOKIE not in [o.otype for o in second.options]  # not the first client's
    assert zone.count("www.example.test.") == 3
