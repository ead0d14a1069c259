"""The `dns` listener end to end: real queries over UDP and TCP to a real authoritative server."""

from __future__ import annotations

import asyncio
import socket
import struct

import dns.asyncquery
import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest
from kairos_dns_testkit import BIG_TXT, DnsGateway, ZoneServer, dns_config


def ask(name: str, rdtype: str = "A", **kwargs: object) -> dns.message.QueryMessage:
    """A recursive query, as a stub resolver sends it."""
    return dns.message.make_query(name, rdtype, **kwargs)  # type: ignore[arg-type]


async def udp(port: int, query: dns.message.Message) -> dns.message.Message:
    """Ask the gateway over UDP (dnspython checks the ID and question of the answer)."""
    return await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=3)


async def tcp(port: int, query: dns.message.Message) -> dns.message.Message:
    """Ask the gateway over TCP."""
    return await dns.asyncquery.tcp(query, "127.0.0.1", port=port, timeout=3)


def texts(response: dns.message.Message) -> list[str]:
    """The answer's records as text, without owner and TTL."""
    return sorted(rd.to_text() for rrset in response.answer for rd in rrset)


async def test_answers_record_types_over_udp_and_tcp(zone: ZoneServer, dns_gateway: DnsGateway):
    _gw, listener = await dns_gateway(dns_config({"public": [zone.port]}, {".": "public"}))
    port = listener.port
    for send in (udp, tcp):
        answer = await send(port, ask("www.example.test.", "A"))
        assert texts(answer) == ["192.0.2.1"]
        assert texts(await send(port, ask("www.example.test.", "AAAA"))) == ["2001:db8::1"]
        assert texts(await send(port, ask("example.test.", "MX"))) == ["10 mail.example.test."]
        assert texts(await send(port, ask("txt.example.test.", "TXT"))) == ['"hello" "world"']
        missing = await send(port, ask("nope.example.test.", "A"))
        assert missing.rcode() == dns.rcode.NXDOMAIN
        assert missing.authority[0].rdtype == dns.rdatatype.SOA  # RFC 2308 negative answer
        assert answer.flags & dns.flags.RD
    assert zone.count("www.example.test.") == 1  # the second transport was served from cache


async def test_keeps_the_client_id_and_letter_case(zone: ZoneServer, dns_gateway: DnsGateway):
    _gw, listener = await dns_gateway(dns_config({"public": [zone.port]}, {".": "public"}))
    for query_id, name in ((4242, "WwW.ExAmPlE.TeSt."), (77, "www.EXAMPLE.test.")):
        query = ask(name)
        query.id = query_id
        wire = await raw_udp(listener.port, query.to_wire())
        answer = dns.message.from_wire(wire)
        assert answer.id == query_id
        assert answer.question[0].name.to_text() == name  # byte for byte, not just equal
        assert name.encode() in _dotted(wire)
        assert texts(answer) == ["192.0.2.1"]
    assert zone.count("www.example.test.") == 1  # the second came from the cache, rewritten


def _dotted(wire: bytes) -> bytes:
    """The question name of `wire` in dotted form, letter case untouched."""
    labels, pos = [], 12
    while wire[pos]:
        labels.append(wire[pos + 1 : pos + 1 + wire[pos]])
        pos += wire[pos] + 1
    return b".".join(labels) + b"."


async def raw_udp(port: int, data: bytes, timeout: float = 3.0) -> bytes:
    """Send raw bytes and return the first datagram back."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[bytes] = loop.create_future()

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, received: bytes, addr: tuple[str, int]) -> None:
            if not answer.done():
                answer.set_result(received)

    transport, _ = await loop.create_datagram_endpoint(Client, remote_addr=("127.0.0.1", port))
    try:
        transport.sendto(data)
        async with asyncio.timeout(timeout):
            return await answer
    finally:
        transport.close()


async def test_edns_options_pass_through(zone: ZoneServer, dns_gateway: DnsGateway):
    _gw, listener = await dns_gateway(dns_config({"public": [zone.port]}, {".": "public"}))
    option = dns.edns.GenericOption(65001, b"kairos-client")
    query = ask("www.example.test.", use_edns=0, payload=1232, options=[option])
    answer = await udp(listener.port, query)
    assert option in zone.options[-1]  # the upstream saw the client's option
    assert [o.to_wire() for o in answer.options if o.otype == dns.edns.NSID] == [b"kairos-test"]


async def test_long_answers_truncate_over_udp_and_retry_over_tcp(
    zone: ZoneServer, dns_gateway: DnsGateway
):
    _gw, listener = await dns_gateway(dns_config({"public": [zone.port]}, {".": "public"}))
    port = listener.port
    plain = await udp(port, ask("big.example.test.", "TXT"))  # no EDNS: 512 bytes at most
    assert plain.flags & dns.flags.TC
    assert plain.answer == []
    # The gateway got a TC answer from upstream over UDP and asked again over TCP itself.
    assert zone.count("big.example.test.", "TXT", "udp") == 1
    assert zone.count("big.example.test.", "TXT", "tcp") == 1
    full = await tcp(port, ask("big.example.test.", "TXT"))  # the client's own TCP retry
    assert not full.flags & dns.flags.TC
    assert len(texts(full)) == len(BIG_TXT)
    assert zone.count("big.example.test.", "TXT") == 2  # the retry came from the cache
    edns = await udp(port, ask("big.example.test.", "TXT", use_edns=0, payload=4096))
    assert edns.flags & dns.flags.TC  # above the listener's max_udp_payload (1232)
    assert edns.edns == 0 and edns.payload == 1232  # says what the gateway can take


async def test_large_udp_payload_when_the_client_and_listener_allow_it(
    zone: ZoneServer, dns_gateway: DnsGateway
):
    config = dns_config({"public": [zone.port]}, {".": "public"}, max_udp_payload=4096)
    _gw, listener = await dns_gateway(config)
    answer = await udp(listener.port, ask("big.example.test.", "TXT", use_edns=0, payload=4096))
    assert not answer.flags & dns.flags.TC
    assert len(texts(answer)) == len(BIG_TXT)


async def test_pipelined_tcp_queries_are_answered_as_they_complete(
    zone: ZoneServer, dns_gateway: DnsGateway
):
    zone.delays["slow"] = 0.3
    _gw, listener = await dns_gateway(dns_config({"public": [zone.port]}, {".": "public"}))
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
    names = ["slow", "www", "mail", "ns1", "nope"]
    queries = {}
    for index, label in enumerate(names):
        query = ask(f"{label}.example.test.")
        query.id = 1000 + index
        queries[query.id] = query
        wire = query.to_wire()
        writer.write(struct.pack("!H", len(wire)) + wire)
    await writer.drain()  # every query is written before any answer is read
    order = []
    for _ in names:
        length = struct.unpack("!H", await reader.readexactly(2))[0]
        answer = dns.message.from_wire(await reader.readexactly(length))
        assert queries.pop(answer.id).question == answer.question
        order.append(answer.question[0].name.labels[0].decode())
    writer.close()
    assert queries == {}
    assert order[-1] == "slow"  # not held up behind the slow first query
    assert sorted(order) == sorted(names)


async def test_idle_tcp_connections_are_closed(zone: ZoneServer, dns_gateway: DnsGateway):
    config = dns_config({"public": [zone.port]}, {".": "public"}, tcp_idle_timeout=0.2)
    _gw, listener = await dns_gateway(config)
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
    wire = ask("www.example.test.").to_wire()
    writer.write(struct.pack("!H", len(wire)) + wire)
    length = struct.unpack("!H", await reader.readexactly(2))[0]
    await reader.readexactly(length)
    async with asyncio.timeout(2):
        assert await reader.read() == b""  # closed by the gateway after 0.2 s of silence
    writer.close()


async def test_garbage_never_takes_the_listener_down(zone: ZoneServer, dns_gateway: DnsGateway):
    gw, listener = await dns_gateway(dns_config({"public": [zone.port]}, {".": "public"}))
    port = listener.port
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    response = dns.message.make_response(ask("www.example.test.")).to_wire()
    for junk in (
        b"",
        b"\x00",
        b"\xff" * 11,
        b"\x12\x34" + b"\xff" * 40,
        response,
        bytes(range(256)),
    ):
        sock.sendto(junk, ("127.0.0.1", port))
    sock.close()
    two_questions = bytearray(ask("www.example.test.").to_wire())
    two_questions[5] = 2  # QDCOUNT 2 with one question present
    formerr = dns.message.from_wire(await raw_udp(port, bytes(two_questions)), question_only=True)
    assert formerr.rcode() == dns.rcode.FORMERR
    cut = ask("www.example.test.").to_wire()[:-3]
    assert dns.message.from_wire(await raw_udp(port, cut)).rcode() == dns.rcode.FORMERR
    notify = bytearray(ask("www.example.test.").to_wire())
    notify[2] = (notify[2] & 0x87) | (4 << 3)  # opcode NOTIFY
    notimp = dns.message.from_wire(await raw_udp(port, bytes(notify)), question_only=True)
    assert notimp.rcode() == dns.rcode.NOTIMP
    badvers = ask("www.example.test.", use_edns=1)
    assert (await udp(port, badvers)).rcode() == dns.rcode.BADVERS
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"\x00\x05hello")  # TCP: not DNS at all, the gateway hangs up
    async with asyncio.timeout(2):
        assert await reader.read() == b""
    writer.close()
    assert texts(await udp(port, ask("www.example.test."))) == ["192.0.2.1"]
    assert texts(await tcp(port, ask("www.example.test."))) == ["192.0.2.1"]
    snapshot = gw.gateway.metrics.snapshot()["kairos_dns_malformed"]["values"]
    assert snapshot[("udp",)] >= 8
    assert snapshot[("tcp",)] == 1


async def test_zone_transfers_are_refused(zone: ZoneServer, dns_gateway: DnsGateway):
    _gw, listener = await dns_gateway(dns_config({"public": [zone.port]}, {".": "public"}))
    answer = await tcp(listener.port, ask("example.test.", "AXFR"))
    assert answer.rcode() == dns.rcode.REFUSED


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_only_one_transport(zone: ZoneServer, dns_gateway: DnsGateway, transport: str):
    other = "tcp" if transport == "udp" else "udp"
    config = dns_config({"public": [zone.port]}, {".": "public"}, **{other: False})
    _gw, listener = await dns_gateway(config)
    send = udp if transport == "udp" else tcp
    assert texts(await send(listener.port, ask("www.example.test."))) == ["192.0.2.1"]
    assert (listener.udp is None) == (transport == "tcp")
    assert (listener.tcp is None) == (transport == "udp")
