"""Per-client rate limits, and the listener in `kairos serve --workers 2` (steering, purge)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import yaml
from kairos_dns_testkit import DnsGateway, FakeClock, ZoneServer, dns_config

from kairos_core.testing import GatewayProcess


async def burst(
    port: int, count: int, source: str = "127.0.0.1", fresh_ports: bool = False
) -> list[dns.message.Message]:
    """Send `count` queries at once (one socket, or one per query) and collect the answers."""
    loop = asyncio.get_running_loop()
    answers: list[dns.message.Message] = []

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            answers.append(dns.message.from_wire(data))

    transports = []
    for index in range(count):
        if fresh_ports or not transports:
            transport, _ = await loop.create_datagram_endpoint(
                Client, local_addr=(source, 0), remote_addr=("127.0.0.1", port)
            )
            transports.append(transport)
        query = dns.message.make_query("www.example.test.", "A")
        query.id = index
        transports[-1].sendto(query.to_wire())
    seen = -1
    async with asyncio.timeout(5):
        while seen != len(answers):  # until 0.3 s pass without another answer
            seen = len(answers)
            await asyncio.sleep(0.3)
    for transport in transports:
        transport.close()
    return answers


def split(answers: list[dns.message.Message]) -> tuple[int, int]:
    """(full answers, truncated 'retry over TCP' answers)."""
    truncated = sum(1 for a in answers if a.flags & dns.flags.TC)
    return len(answers) - truncated, truncated


async def test_each_client_address_gets_its_own_budget(
    zone: ZoneServer, dns_gateway: DnsGateway, clock: FakeClock
):
    limit = {"per_second": 2, "burst": 3, "slip": 2}
    config = dns_config({"public": [zone.port]}, {".": "public"}, rate_limit=limit)
    gw, listener = await dns_gateway(config)
    port = listener.port
    # 3 allowed; of the 5 over the limit every 2nd gets a tiny TC answer, the rest nothing.
    assert split(await burst(port, 8)) == (3, 2)
    assert split(await burst(port, 3, source="127.0.0.2")) == (3, 0)
    clock.advance(1.0)  # two more tokens
    assert split(await burst(port, 2)) == (2, 0)
    limited = gw.gateway.metrics.snapshot()["kairos_dns_rate_limited"]["values"]
    assert limited[("udp",)] == 5
    over_tcp = await dns.asyncquery.tcp(
        dns.message.make_query("www.example.test.", "A"), "127.0.0.1", port=port, timeout=3
    )
    assert over_tcp.rcode() == dns.rcode.REFUSED  # still over its budget (no spoofing on TCP)
    clock.advance(1.0)
    over_tcp = await dns.asyncquery.tcp(
        dns.message.make_query("www.example.test.", "A"), "127.0.0.1", port=port, timeout=3
    )
    assert over_tcp.rcode() == dns.rcode.NOERROR


async def test_slip_zero_drops_everything_over_the_limit(zone: ZoneServer, dns_gateway: DnsGateway):
    limit = {"per_second": 1, "burst": 2, "slip": 0}
    config = dns_config({"public": [zone.port]}, {".": "public"}, rate_limit=limit)
    _gw, listener = await dns_gateway(config)
    assert split(await burst(listener.port, 6)) == (2, 0)


def free_udp_and_tcp_port() -> int:
    """A port that is free for both UDP and TCP on 127.0.0.1."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port


async def test_limits_hold_across_workers_and_purge_reaches_each(zone: ZoneServer, tmp_path: Path):
    dns_port, admin_port = free_udp_and_tcp_port(), free_udp_and_tcp_port()
    config = dns_config(
        {"public": [zone.port]},
        {".": "public"},
        rate_limit={"per_second": 0.01, "burst": 10, "slip": 0},
    )
    config["listeners"][1]["port"] = dns_port
    config["admin"] = {"host": "127.0.0.1", "port": admin_port}
    path = tmp_path / "dns.yaml"
    path.write_text(yaml.safe_dump(config))
    gateway = GatewayProcess(["--config", str(path), "--workers", "2"])
    try:
        await gateway.start()
        # Each query from a new source port: the kernel would spread them over both workers,
        # but steering by address sends 127.0.0.1 to one worker, so one budget of 10 holds.
        assert len(await burst(dns_port, 40, fresh_ports=True)) == 10
        assert len(await burst(dns_port, 40, source="127.0.0.3", fresh_ports=True)) == 10
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{admin_port}/dns/cache/purge"
            async with http.post(url, json={"all": True}) as response:
                body: dict[str, Any] = await response.json()
        assert response.status == 200
        assert body["workers"] == 2
        assert body["removed"] >= 1
    finally:
        await gateway.stop()


def test_kairos_validate_reports_a_bad_zone_pool(tmp_path: Path) -> None:
    config = dns_config({"public": [53]}, {".": "public", "corp.internal.": "corp"})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "kairos_cli", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "bad.yaml" in output
    assert "listeners[1].config" in output
    assert "unknown upstream 'corp'" in output
