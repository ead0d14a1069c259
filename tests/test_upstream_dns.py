"""Backend host names are re-resolved when their DNS answer's TTL expires."""

from __future__ import annotations

import asyncio

from core_dns_server import start_dns

from kairos_core.testing import echo_app, start_backend


async def test_backend_name_follows_dns_changes(kairos_gateway, http) -> None:
    async with start_backend(echo_app("first"), host="127.0.0.1") as first:
        async with start_backend(echo_app("second"), host="127.0.0.2", port=first.port) as second:
            dns = await start_dns({"backend.test.": "127.0.0.1"}, ttl=1)
            try:
                gw = await kairos_gateway(
                    {
                        "resolver": {"nameservers": [f"127.0.0.1:{dns.port}"], "min_ttl": 0},
                        "upstreams": {
                            "svc": {
                                "backends": [{"url": f"http://backend.test:{first.port}"}],
                                "keepalive_timeout": 0.05,
                            }
                        },
                        "routes": [{"prefix": "/", "upstream": "svc"}],
                    }
                )
                async with http.get(gw.url + "/") as response:
                    assert (await response.json())["backend"] == "first"
                async with http.get(gw.url + "/") as response:
                    assert (await response.json())["backend"] == "first"
                assert dns.queries.count("backend.test. A") == 1  # cached within the TTL
                dns.records["backend.test."] = "127.0.0.2"
                await asyncio.sleep(1.2)
                async with http.get(gw.url + "/") as response:
                    assert (await response.json())["backend"] == "second"
                assert dns.queries.count("backend.test. A") == 2
                assert len(second.records) == 1
            finally:
                assert dns.transport is not None
                dns.transport.close()


async def test_unresolvable_backend_is_a_502(kairos_gateway, http) -> None:
    dns = await start_dns({}, ttl=1)
    try:
        gw = await kairos_gateway(
            {
                "resolver": {"nameservers": [f"127.0.0.1:{dns.port}"]},
                "routes": [
                    {"prefix": "/", "upstream": {"backends": [{"url": "http://nowhere.test:80"}]}}
                ],
            }
        )
        async with http.get(gw.url + "/") as response:
            assert response.status == 502
            body = await response.json()
        assert body["type"] == "upstream_connect"
        assert "nowhere.test" in body["message"]
    finally:
        assert dns.transport is not None
        dns.transport.close()
