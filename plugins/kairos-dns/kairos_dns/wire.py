"""DNS wire format on the hot path: parse a query, walk an answer, build error and TC replies.

dnspython is used for names and record types in settings and tests; per packet these few
byte-level functions do the work (a full dnspython parse costs ~30x more).
"""

from __future__ import annotations

import struct

NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
BADVERS = 16
OPT, SOA = 41, 6
AXFR, IXFR = 252, 251
COOKIE_OPTION, ECS_OPTION = 10, 8

_HEADER = struct.Struct("!HHHHHH")
_U16 = struct.Struct("!H")
_TYPE_CLASS = struct.Struct("!HH")
_RR_FIXED = struct.Struct("!HHIH")
_TTL = struct.Struct("!I")

QR, AA, TC, RD = 0x8000, 0x0400, 0x0200, 0x0100
RA, CD = 0x0080, 0x0010


class Malformed(Exception):
    """A packet that is not a well-formed DNS message; `reply` (if any) answers it."""

    def __init__(self, message: str, reply: bytes | None = None) -> None:
        super().__init__(message)
        self.reply = reply


class Query:
    """The parts of a client's query the gateway needs, read straight from the wire."""

    __slots__ = ("do", "ecs", "edns", "flags", "id_bytes", "key", "qname", "qtype", "udp_size")

    def __init__(
        self,
        id_bytes: bytes,
        flags: int,
        qname: bytes,
        qtype: int,
        key: bytes,
        edns: bool,
        udp_size: int,
        do: bool,
        ecs: bool,
    ) -> None:
        self.id_bytes = id_bytes
        self.flags = flags
        self.qname = qname
        """The question's name in wire form, letter case as the client sent it."""
        self.qtype = qtype
        self.key = key
        """Cache key: lower-cased name, type, class and the EDNS/DO/CD bits."""
        self.edns = edns
        self.udp_size = udp_size
        self.do = do
        self.ecs = ecs
        """The query carries an EDNS client-subnet option (its answer is client-specific)."""

    @property
    def question(self) -> bytes:
        """Name, type and class as the client sent them."""
        return self.qname + self.key[len(self.qname) : len(self.qname) + 4]


def skip_name(wire: bytes, pos: int) -> int:
    """The offset just after the (possibly compressed) name starting at `pos`."""
    while True:
        length = wire[pos]
        if length == 0:
            return pos + 1
        if length & 0xC0 == 0xC0:
            if pos + 2 > len(wire):
                raise IndexError(pos)
            return pos + 2
        if length & 0xC0:
            raise Malformed(f"bad label type at {pos}")
        pos += length + 1


def parse_query(data: bytes) -> Query:
    """Read a client's query; raise Malformed (with a FORMERR/NOTIMP reply when one is due)."""
    if len(data) < 12:
        raise Malformed("shorter than a DNS header")
    _id, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(data)
    if flags & QR:
        raise Malformed("a response, not a query")  # never answer answers (reflection loops)
    opcode = (flags >> 11) & 0xF
    if opcode != 0:
        raise Malformed(f"opcode {opcode}", _bare_reply(data, flags, NOTIMP))
    if qdcount != 1:
        raise Malformed(f"{qdcount} questions", _bare_reply(data, flags, FORMERR))
    try:
        pos = 12
        while True:  # question names are never compressed
            length = data[pos]
            if length == 0:
                break
            if length > 63:
                raise Malformed("compressed or oversized label in the question")
            pos += length + 1
        name_end = pos + 1
        if name_end - 12 > 255:
            raise Malformed("name longer than 255 bytes")
        qtype, _qclass = _TYPE_CLASS.unpack_from(data, name_end)
        end = name_end + 4
        if end > len(data):
            raise IndexError(end)
        edns = do = ecs = False
        udp_size = 512
        pos = end
        for _ in range(ancount + nscount):
            pos = skip_name(data, pos)
            pos += 10 + _U16.unpack_from(data, pos + 8)[0]
        for _ in range(arcount):
            owner = pos
            pos = skip_name(data, pos)
            rtype, rclass, ttl, rdlen = _RR_FIXED.unpack_from(data, pos)
            rdata = pos + 10
            root_owned = pos == owner + 1
            pos = rdata + rdlen
            if pos > len(data):
                raise IndexError(pos)
            if rtype != OPT:
                continue
            if edns or not root_owned:
                raise Malformed("a second OPT record, or one not owned by the root")
            edns = True
            udp_size = max(512, rclass)
            do = bool(ttl & 0x8000)
            if (ttl >> 16) & 0xFF:  # EDNS version
                raise Malformed("EDNS version", error_reply(_partial(data, name_end), BADVERS))
            ecs = _has_option(data, rdata, pos, ECS_OPTION)
        if pos != len(data):
            raise Malformed("trailing bytes after the message")
    except Malformed as exc:
        if exc.reply is None:
            exc.reply = _bare_reply(data, flags, FORMERR)
        raise
    except (IndexError, struct.error):
        raise Malformed("truncated message", _bare_reply(data, flags, FORMERR)) from None
    if qtype == OPT:
        raise Malformed("OPT as question type", _bare_reply(data, flags, FORMERR))
    qname = data[12:name_end]
    bits = (edns << 2) | (do << 1) | bool(flags & CD)
    key = qname.lower() + data[name_end:end] + bytes((bits,))
    return Query(data[:2], flags, qname, qtype, key, edns, udp_size, do, ecs)


def _partial(data: bytes, name_end: int) -> Query:
    """A Query good enough to build an error reply (cache key fields unused)."""
    _id, flags = _HEADER.unpack_from(data)[:2]
    qname = data[12:name_end]
    key = qname + data[name_end : name_end + 4] + b"\x00"
    return Query(data[:2], flags, qname, 0, key, True, 512, False, False)


def _has_option(data: bytes, pos: int, end: int, code: int) -> bool:
    while pos + 4 <= end:
        option, length = _TYPE_CLASS.unpack_from(data, pos)
        if option == code:
            return True
        pos += 4 + length
    return False


def _bare_reply(data: bytes, flags: int, rcode: int) -> bytes:
    """An error reply with no question section (the question could not be read)."""
    reply_flags = QR | (flags & 0x7900) | RA | rcode  # opcode and RD echoed
    return data[:2] + _HEADER.pack(0, reply_flags, 0, 0, 0, 0)[2:]


def opt_record(payload: int, do: bool, extended_rcode: int = 0) -> bytes:
    """An OPT pseudo-record advertising `payload` bytes (RFC 6891)."""
    ttl = ((extended_rcode >> 4) << 24) | (0x8000 if do else 0)
    return b"\x00" + _RR_FIXED.pack(OPT, payload, ttl, 0)


def error_reply(query: Query, rcode: int, payload: int = 1232) -> bytes:
    """An answer with no records and `rcode` (REFUSED, SERVFAIL, ...) to `query`."""
    flags = QR | (query.flags & 0x7910) | RA | (rcode & 0xF)  # opcode, RD, CD echoed
    header = query.id_bytes + _HEADER.pack(0, flags, 1, 0, 0, 1 if query.edns else 0)[2:]
    opt = opt_record(payload, query.do, rcode) if query.edns else b""
    return header + query.question + opt


def truncated_reply(query: Query, answer: bytes, payload: int) -> bytes:
    """`answer` cut to its question with TC set, for a UDP client it does not fit (RFC 2181)."""
    flags = _U16.unpack_from(answer, 2)[0] | TC
    header = query.id_bytes + _HEADER.pack(0, flags, 1, 0, 0, 1 if query.edns else 0)[2:]
    opt = opt_record(payload, query.do) if query.edns else b""
    return header + query.question + opt


def for_client(query: Query, answer: bytes) -> bytes:
    """`answer` (any ID, any letter case) rewritten with the client's ID and question bytes."""
    qlen = len(query.qname)
    return query.id_bytes + answer[2:12] + query.qname + answer[12 + qlen :]


def make_query(qname: bytes, qtype: int, query_id: int, edns_payload: int = 1232) -> bytes:
    """A recursive query for (name, type, IN) with EDNS, e.g. for health probes."""
    header = _HEADER.pack(query_id, RD, 1, 0, 0, 1)
    return header + qname + _TYPE_CLASS.pack(qtype, 1) + opt_record(edns_payload, False)


def set_id(wire: bytes, query_id: int) -> bytes:
    """`wire` with another message ID."""
    return _U16.pack(query_id) + wire[2:]


class Layout:
    """Where an answer's records are: TTL offsets and values, SOA data, OPT position."""

    __slots__ = (
        "answers",
        "negative_ttl",
        "opt_end",
        "opt_start",
        "rcode",
        "soa_ttl_offset",
        "truncated",
        "ttl_offsets",
        "ttls",
    )

    def __init__(self) -> None:
        self.rcode = 0
        self.truncated = False
        self.answers = 0
        self.ttl_offsets: list[int] = []
        self.ttls: list[int] = []
        self.soa_ttl_offset: int | None = None
        self.negative_ttl: int | None = None
        """min(SOA TTL, SOA MINIMUM) of the authority section's SOA (RFC 2308)."""
        self.opt_start: int | None = None
        self.opt_end = 0

    @property
    def min_ttl(self) -> int:
        """The smallest record TTL (0 when there are no records)."""
        return min(self.ttls, default=0)


def walk(wire: bytes) -> Layout:
    """Check that `wire` is a well-formed answer and locate its records."""
    layout = Layout()
    try:
        _id, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(wire)
        layout.rcode = flags & 0xF
        layout.truncated = bool(flags & TC)
        layout.answers = ancount
        pos = 12
        for _ in range(qdcount):
            pos = skip_name(wire, pos) + 4
        for index in range(ancount + nscount + arcount):
            start = pos
            pos = skip_name(wire, pos)
            rtype, _rclass, ttl, rdlen = _RR_FIXED.unpack_from(wire, pos)
            rdata = pos + 10
            end = rdata + rdlen
            if end > len(wire):
                raise IndexError(end)
            if rtype == OPT:
                layout.opt_start, layout.opt_end = start, end
                layout.rcode |= (ttl >> 24) << 4
            else:
                layout.ttl_offsets.append(pos + 4)
                layout.ttls.append(ttl & 0x7FFFFFFF)
                is_authority = ancount <= index < ancount + nscount
                if rtype == SOA and is_authority and layout.soa_ttl_offset is None:
                    minimum = _TTL.unpack_from(wire, end - 4)[0]
                    layout.soa_ttl_offset = pos + 4
                    layout.negative_ttl = min(ttl & 0x7FFFFFFF, minimum)
            pos = end
        if pos != len(wire):
            raise Malformed("trailing bytes after the message")
    except (IndexError, struct.error):
        raise Malformed("truncated answer") from None
    return layout


def without_cookie(wire: bytes, layout: Layout) -> bytes:
    """`wire` minus an EDNS COOKIE option (it belongs to one client) when OPT is last."""
    start, end = layout.opt_start, layout.opt_end
    if start is None or end != len(wire):
        return wire
    rdata = start + 11
    kept = bytearray()
    pos = rdata
    while pos + 4 <= end:
        option, length = _TYPE_CLASS.unpack_from(wire, pos)
        if option != COOKIE_OPTION:
            kept += wire[pos : pos + 4 + length]
        pos += 4 + length
    if len(kept) == end - rdata:
        return wire
    return wire[: rdata - 2] + _U16.pack(len(kept)) + bytes(kept)


def name_to_text(qname: bytes) -> str:
    """`\\x03www\\x07example\\x03com\\x00` -> `www.example.com.` (for logs and purges)."""
    labels = []
    pos = 0
    while qname[pos]:
        length = qname[pos]
        labels.append(qname[pos + 1 : pos + 1 + length].decode("ascii", "backslashreplace"))
        pos += length + 1
    return ".".join(labels) + "." if labels else "."
