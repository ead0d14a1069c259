"""DNS wire properties: any packet is parsed, answered with FORMERR-style bytes or dropped."""

from __future__ import annotations

import struct

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
from hypothesis import example, given
from hypothesis import strategies as st
from kairos_dns.resolver import ZoneTable
from kairos_dns.wire import (
    FORMERR,
    QR,
    Malformed,
    Query,
    error_reply,
    for_client,
    name_to_text,
    parse_query,
    truncated_reply,
    walk,
    without_cookie,
)

from kairos_core.testing.properties import bounded

BOUNDED = bounded(300)
LABELS = st.text("abcdeXYZ09-_", min_size=1, max_size=10)
NAMES = st.lists(LABELS, min_size=0, max_size=5).map(lambda labels: ".".join([*labels, ""]))
TYPES = st.sampled_from(["A", "AAAA", "MX", "TXT", "NS", "SOA", "CNAME", "PTR", "SRV"])


def valid_query(name: str, rdtype: str, query_id: int, edns: bool) -> bytes:
    """A well-formed query as a stub resolver sends it."""
    query = dns.message.make_query(name, rdtype, use_edns=0 if edns else False)
    query.id = query_id
    return query.to_wire()


def handle(data: bytes) -> bytes | None:
    """What the UDP listener does with a packet before any upstream: reply bytes or a drop."""
    try:
        query = parse_query(data)
    except Malformed as exc:
        return exc.reply
    ZoneTable({b"\x07example\x00": object()}).lookup(query.key[: len(query.qname)])  # type: ignore[dict-item]
    assert name_to_text(query.qname).endswith(".")
    reply = error_reply(query, 5)
    assert truncated_reply(query, reply, 1232)[:2] == data[:2]
    return reply


def mutations() -> st.SearchStrategy[bytes]:
    """Valid queries with bytes flipped, cut or appended, and plain random bytes."""
    base = st.builds(valid_query, NAMES, TYPES, st.integers(0, 0xFFFF), st.booleans())

    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        data = bytearray(draw(base))
        for _ in range(draw(st.integers(0, 3))):
            choice = draw(st.integers(0, 2))
            if choice == 0 and data:
                index = draw(st.integers(0, len(data) - 1))
                data[index] = draw(st.integers(0, 255))
            elif choice == 1:
                del data[draw(st.integers(0, len(data))) :]
            else:
                data += draw(st.binary(max_size=8))
        return bytes(data)

    return st.binary(max_size=300) | mutate()


@BOUNDED
@given(mutations())
@example(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01")
@example(b"\x12\x34\x01\x00\x00\x01\x00\x01\x00\x00\x00\x00\x00\x00\x01\x00\x01\x3f")
@example(b"\x00" * 12)
def test_any_packet_is_answered_or_dropped(data: bytes) -> None:
    reply = handle(data)
    if reply is None:
        return
    assert reply[:2] == data[:2]  # the client's ID
    header = struct.unpack("!HHHHHH", reply[:12])
    assert header[1] & QR
    try:
        parse_query(data)
    except Malformed:
        message = dns.message.from_wire(reply, question_only=True)
        assert message.rcode() in (dns.rcode.FORMERR, dns.rcode.NOTIMP, dns.rcode.BADVERS)


@BOUNDED
@given(NAMES, TYPES, st.integers(0, 0xFFFF), st.booleans(), st.integers(0, 0xFFFF))
def test_well_formed_queries_keep_id_and_letter_case(
    name: str, rdtype: str, query_id: int, edns: bool, upstream_id: int
) -> None:
    data = valid_query(name, rdtype, query_id, edns)
    query = parse_query(data)
    assert query.id_bytes == struct.pack("!H", query_id)
    assert query.qname == dns.name.from_text(name).to_wire()  # letter case as sent
    assert query.qtype == dns.rdatatype.from_text(rdtype)
    assert query.edns == edns
    # An upstream answer with another ID and the name lower-cased goes back as the client asked.
    answer = dns.message.make_response(dns.message.from_wire(data))
    answer.id = upstream_id
    answer.question[0].name = dns.name.from_text(name.lower())
    back = dns.message.from_wire(for_client(query, answer.to_wire()))
    assert back.id == query_id
    assert back.question[0].name.to_wire() == query.qname
    for rcode in (FORMERR, 5, 2):
        reply = dns.message.from_wire(error_reply(query, rcode))
        assert reply.id == query_id
        assert reply.rcode() == rcode
        assert reply.question[0].name.to_wire() == query.qname


@BOUNDED
@given(mutations() | st.builds(lambda m: m.to_wire(), st.just(dns.message.make_query("a.", "A"))))
def test_any_upstream_answer_is_walked_or_refused(data: bytes) -> None:
    try:
        layout = walk(data)
    except Malformed:
        return
    assert all(0 <= offset <= len(data) - 4 for offset in layout.ttl_offsets)
    stripped = without_cookie(data, layout)
    assert len(stripped) <= len(data)


def test_a_query_object_builds_replies_for_its_own_question() -> None:
    query: Query = parse_query(valid_query("Www.Example.", "A", 7, True))
    reply = dns.message.from_wire(error_reply(query, FORMERR))
    assert str(reply.question[0].name) == "Www.Example."
