"""A tiny authoritative DNS server on loopback for tests (dnspython wire format)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import dns.message
import dns.rdataclass
import dns.rdatatype
import dns.rrset


@dataclass
class TestDNS(asyncio.DatagramProtocol):
    """Answers A queries from `records` with `ttl`; counts the queries it gets."""

    records: dict[str, str] = field(default_factory=dict)
    ttl: int = 1
    queries: list[str] = field(default_factory=list)
    transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        question = query.question[0]
        name = question.name.to_text().lower()
        self.queries.append(f"{name} {dns.rdatatype.to_text(question.rdtype)}")
        response = dns.message.make_response(query)
        address = self.records.get(name)
        if address is None:
            response.set_rcode(3)  # NXDOMAIN
        elif question.rdtype == dns.rdatatype.A:
            response.answer.append(
                dns.rrset.from_text(
                    question.name, self.ttl, dns.rdataclass.IN, dns.rdatatype.A, address
                )
            )
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])


async def start_dns(records: dict[str, str], ttl: int = 1) -> TestDNS:
    loop = asyncio.get_running_loop()
    server = TestDNS(records, ttl)
    await loop.create_datagram_endpoint(lambda: server, local_addr=("127.0.0.1", 0))
    return server
