"""Fuzz target: a UDP packet through the DNS plugin's query parsing and reply building."""

from __future__ import annotations

from kairos_dns.wire import (
    QR,
    Malformed,
    error_reply,
    name_to_text,
    parse_query,
    truncated_reply,
    walk,
    without_cookie,
)


def test_one_input(data: bytes) -> None:
    """A query: answered (same ID, QR set) or dropped; as an upstream answer: walked or Malformed."""
    try:
        query = parse_query(data)
    except Malformed as exc:
        if exc.reply is not None:
            assert exc.reply[:2] == data[:2] and exc.reply[2] & (QR >> 8)
    else:
        name_to_text(query.qname)
        reply = error_reply(query, 5)
        assert reply[:2] == data[:2]
        truncated_reply(query, reply, 1232)
    try:
        layout = walk(data)
    except Malformed:
        return
    without_cookie(data, layout)
