"""Test kit: an authoritative DNS server on loopback (UDP and TCP, dnspython), configs, a clock."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from kairos_dns import DnsListener

from kairos_core.testing import RunningGateway

BIG_TXT = [f'"{chr(97 + i) * 200}"' for i in range(12)]  # ~2.5 KB: never fits 1232 bytes


def example_zone(origin: str = "example.test.", address: str = "192.0.2.1") -> str:
    """The test zone in master-file form (TTLs chosen so tests can tell them apart)."""
    big = "\n".join(f"big 300 IN TXT {text}" for text in BIG_TXT)
    return f"""
$ORIGIN {origin}
@ 300 IN SOA ns1 hostmaster 1 3600 600 86400 60
@ 300 IN NS ns1
ns1 300 IN A 192.0.2.53
www 300 IN A {address}
www 300 IN AAAA 2001:db8::1
@ 300 IN MX 10 mail
mail 300 IN A 192.0.2.25
short 5 IN A 192.0.2.5
txt 300 IN TXT "hello" "world"
slow 300 IN A 192.0.2.99
{big}
"""


@dataclass
class ZoneServer:
    """Answers from its records; counts questions per transport; can delay or go silent."""

    origin: dns.name.Name
    records: dict[tuple[dns.name.Name, int], dns.rrset.RRset]
    soa: dns.rrset.RRset
    nsid: bytes = b"kairos-test"
    delays: dict[str, float] = field(default_factory=dict)
    questions: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    options: list[list[dns.edns.Option]] = field(default_factory=list)
    silent: bool = False
    udp: asyncio.DatagramTransport | None = None
    tcp: asyncio.Server | None = None
    port: int = 0

    def count(self, name: str, rdtype: str = "A", transport: str | None = None) -> int:
        """How many times (name, type) was asked, over one transport or both."""
        name = name.lower()
        return sum(
            n
            for (q, t, via), n in self.questions.items()
            if q == name and t == rdtype and transport in (None, via)
        )

    def answer(self, query: dns.message.Message, transport: str) -> dns.message.Message:
        """The authoritative answer to `query`."""
        question = query.question[0]
        name = question.name
        self.questions[
            (name.to_text().lower(), dns.rdatatype.to_text(question.rdtype), transport)
        ] += 1
        self.options.append(list(query.options))
        response = dns.message.make_response(query)
        if query.edns >= 0:
            options: list[dns.edns.Option] = [dns.edns.GenericOption(dns.edns.NSID, self.nsid)]
            for option in query.options:  # echo the client cookie with a server cookie
                if option.otype == dns.edns.COOKIE:
                    client = option.to_wire()[:8]
                    options.append(dns.edns.GenericOption(dns.edns.COOKIE, client + b"srvcooki"))
            response.use_edns(0, 0, 1232, options=options)
        response.flags |= dns.flags.AA
        if not name.is_subdomain(self.origin):
            response.set_rcode(dns.rcode.REFUSED)
            response.flags &= ~dns.flags.AA
            return response
        found = self.records.get((name.canonicalize(), question.rdtype))
        if found is not None:
            rrset = dns.rrset.RRset(name, found.rdclass, found.rdtype)
            rrset.update(found)
            rrset.ttl = found.ttl
            response.answer.append(rrset)
            return response
        if not any(owner == name.canonicalize() for owner, _t in self.records):
            response.set_rcode(dns.rcode.NXDOMAIN)
        response.authority.append(self.soa)
        return response

    def to_wire(self, response: dns.message.Message, limit: int) -> bytes:
        """`response` in at most `limit` bytes, else truncated with TC like a real server."""
        try:
            return response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            response.answer.clear()
            response.authority.clear()
            response.additional.clear()
            response.flags |= dns.flags.TC
            return response.to_wire(max_size=limit)

    async def delay_for(self, query: dns.message.Message) -> None:
        """Wait as configured for this name's first label (e.g. `slow`)."""
        first = query.question[0].name.labels[0].decode().lower() if query.question else ""
        pause = self.delays.get(first)
        if pause:
            await asyncio.sleep(pause)

    async def close(self) -> None:
        """Stop both transports."""
        if self.udp is not None:
            self.udp.close()
        if self.tcp is not None:
            self.tcp.close()
            await self.tcp.wait_closed()


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: ZoneServer) -> None:
        self.server = server
        self.tasks: set[asyncio.Task[None]] = set()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        task = asyncio.get_running_loop().create_task(self.reply(data, addr))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def reply(self, data: bytes, addr: tuple[str, int]) -> None:
        server = self.server
        if server.silent:
            return
        query = dns.message.from_wire(data)
        await server.delay_for(query)
        response = server.answer(query, "udp")
        limit = max(512, query.payload) if query.edns >= 0 else 512
        assert server.udp is not None
        server.udp.sendto(server.to_wire(response, limit), addr)


async def _tcp_session(
    server: ZoneServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
        while True:
            length = struct.unpack("!H", await reader.readexactly(2))[0]
            query = dns.message.from_wire(await reader.readexactly(length))
            if server.silent:
                continue
            await server.delay_for(query)
            wire = server.to_wire(server.answer(query, "tcp"), 65535)
            writer.write(struct.pack("!H", len(wire)) + wire)
            await writer.drain()
    writer.close()


async def start_zone_server(
    zone_text: str | None = None, origin: str = "example.test.", port: int = 0
) -> ZoneServer:
    """Serve `zone_text` on 127.0.0.1 over UDP and TCP on one (free) port."""
    import dns.zone

    zone = dns.zone.from_text(zone_text or example_zone(origin), origin=origin, relativize=False)
    records: dict[tuple[dns.name.Name, int], dns.rrset.RRset] = {}
    for name, node in zone.nodes.items():
        for rdataset in node.rdatasets:
            rrset = dns.rrset.RRset(name, rdataset.rdclass, rdataset.rdtype)
            rrset.update(rdataset)
            rrset.ttl = rdataset.ttl
            records[(name.canonicalize(), rdataset.rdtype)] = rrset
    apex = dns.name.from_text(origin)
    server = ZoneServer(apex, records, records[(apex, dns.rdatatype.SOA)])
    loop = asyncio.get_running_loop()
    for _ in range(20):
        tcp = await asyncio.start_server(lambda r, w: _tcp_session(server, r, w), "127.0.0.1", port)
        bound = tcp.sockets[0].getsockname()[1]
        try:
            udp, _protocol = await loop.create_datagram_endpoint(
                lambda: _Udp(server), local_addr=("127.0.0.1", bound)
            )
        except OSError:
            tcp.close()
            await tcp.wait_closed()
            if port:
                raise
            continue
        sock = udp.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)  # as real resolvers do
        server.udp, server.tcp, server.port = udp, tcp, bound
        return server
    raise OSError("no free port for both UDP and TCP")


class FakeClock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Let `seconds` pass."""
        self.now += seconds


def dns_config(
    pools: dict[str, list[int]], zones: dict[str, str], **settings: Any
) -> dict[str, Any]:
    """A gateway with a `dns` listener on a free port and one pool per entry of `pools`."""
    listener = {
        "name": "dns",
        "protocol": "dns",
        "host": "127.0.0.1",
        "port": 0,
        "config": {"zones": zones, **settings},
    }
    return {
        "listeners": [{"host": "127.0.0.1", "port": 0}, listener],
        "upstreams": {
            name: {"backends": [{"url": f"dns://127.0.0.1:{port}"} for port in ports]}
            for name, ports in pools.items()
        },
        "routes": [],
    }


DnsGateway = Callable[..., Awaitable[tuple[RunningGateway, DnsListener]]]
"""The `dns_gateway` fixture: `await dns_gateway(config, *plugins)` -> (gateway, listener)."""
