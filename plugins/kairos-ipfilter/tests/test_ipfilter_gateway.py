"""ip-filter end to end: real client address, trusted proxies and X-Forwarded-For, 403 body."""

from __future__ import annotations

import socket
from typing import Any

import kairos_ipfilter
import pytest

from kairos_core.testing import Backend, require_service


def config(backend: Backend, route_plugins: list[Any], **extra: Any) -> dict[str, Any]:
    return {
        "routes": [
            {
                "name": "guarded",
                "prefix": "/guarded",
                "upstream": {"backends": [{"url": backend.url}]},
                "plugins": route_plugins,
            },
            {"name": "open", "prefix": "/open", "upstream": {"backends": [{"url": backend.url}]}},
        ],
        **extra,
    }


async def test_deny_list_refuses_with_json_body(kairos_gateway, echo_backend, http) -> None:
    gw = await kairos_gateway(
        config(echo_backend, [{"name": "ip-filter", "config": {"deny": ["127.0.0.0/8"]}}]),
        plugins=[kairos_ipfilter],
    )
    async with http.get(gw.url + "/guarded/x", headers={"X-Request-ID": "rid-1"}) as response:
        assert response.status == 403
        assert response.headers["Content-Type"] == "application/json"
        assert await response.json() == {
            "status": 403,
            "type": "ip_not_allowed",
            "message": "your address is not allowed to use this route",
            "request_id": "rid-1",
        }
    async with http.get(gw.url + "/open/x") as response:
        assert response.status == 200  # the filter is on the other route only
    assert [r.path for r in echo_backend.records] == ["/open/x"]


async def test_allow_list_admits_loopback(kairos_gateway, echo_backend, http) -> None:
    gw = await kairos_gateway(
        config(echo_backend, [{"name": "ip-filter", "config": {"allow": ["127.0.0.0/8", "::1"]}}]),
        plugins=[kairos_ipfilter],
    )
    async with http.get(gw.url + "/guarded/x") as response:
        assert response.status == 200


async def test_global_filter_and_route_override(kairos_gateway, echo_backend, http) -> None:
    cfg = config(
        echo_backend,
        [{"name": "ip-filter", "config": {"allow": ["127.0.0.1"], "status": 404, "message": "no"}}],
        plugins=[{"name": "ip-filter", "config": {"allow": ["10.0.0.0/8"]}}],
    )
    gw = await kairos_gateway(cfg, plugins=[kairos_ipfilter])
    async with http.get(gw.url + "/open/x") as response:
        assert response.status == 403  # global: only 10/8
    async with http.get(gw.url + "/guarded/x") as response:
        assert response.status == 200  # the route's own entry replaces the global one


async def test_forwarded_for_counts_only_from_trusted_proxies(
    kairos_gateway, echo_backend, http
) -> None:
    plugin = [{"name": "ip-filter", "config": {"deny": ["203.0.113.0/24"]}}]
    untrusted = await kairos_gateway(config(echo_backend, plugin), plugins=[kairos_ipfilter])
    trusted = await kairos_gateway(
        config(echo_backend, plugin, server={"trusted_proxies": ["127.0.0.0/8"]}),
        plugins=[kairos_ipfilter],
    )
    spoof = {"X-Forwarded-For": "203.0.113.7"}
    async with http.get(untrusted.url + "/guarded/x", headers=spoof) as response:
        assert response.status == 200  # the peer (127.0.0.1) is not a trusted proxy
    async with http.get(trusted.url + "/guarded/x", headers=spoof) as response:
        assert response.status == 403  # via a trusted proxy: the forwarded client counts
    # A client cannot hide behind a forged leftmost hop: the rightmost untrusted hop counts.
    chained = {"X-Forwarded-For": "198.51.100.1, 203.0.113.7"}
    async with http.get(trusted.url + "/guarded/x", headers=chained) as response:
        assert response.status == 403
    innocent = {"X-Forwarded-For": "203.0.113.7, 198.51.100.1"}
    async with http.get(trusted.url + "/guarded/x", headers=innocent) as response:
        assert response.status == 200


async def test_refusals_are_counted(kairos_gateway, echo_backend, http) -> None:
    gw = await kairos_gateway(
        config(echo_backend, [{"name": "ip-filter", "config": {"deny": ["127.0.0.1"]}}]),
        plugins=[kairos_ipfilter],
    )
    for _ in range(2):
        async with http.get(gw.url + "/guarded/") as response:
            assert response.status == 403
    snapshot = gw.gateway.metrics.snapshot()
    assert snapshot["kairos_ip_filter_refused"]["values"] == {("guarded",): 2.0}


async def test_bad_config_names_the_field(kairos_gateway, echo_backend) -> None:
    located = r"routes\[0\]\.plugins\[0\]\.config\.deny: '10\.0\.0\.1/8' has host bits set"
    with pytest.raises(Exception, match=located):
        await kairos_gateway(
            config(echo_backend, [{"name": "ip-filter", "config": {"deny": ["10.0.0.1/8"]}}]),
            plugins=[kairos_ipfilter],
        )
    with pytest.raises(Exception, match="set `allow`, `deny` or both"):
        await kairos_gateway(
            config(echo_backend, [{"name": "ip-filter", "config": {}}]), plugins=[kairos_ipfilter]
        )


async def test_ipv6_clients(kairos_gateway, echo_backend, http) -> None:
    require_service("IPv6 loopback", ipv6_loopback(), "enable ::1")
    listeners = [{"host": "::1", "port": 0}]
    denied = await kairos_gateway(
        config(
            echo_backend,
            [{"name": "ip-filter", "config": {"deny": ["::1/128"]}}],
            listeners=listeners,
        ),
        plugins=[kairos_ipfilter],
    )
    async with http.get(denied.url + "/guarded/x") as response:
        assert response.status == 403
    allowed = await kairos_gateway(
        config(
            echo_backend,
            [{"name": "ip-filter", "config": {"allow": ["::/0"], "deny": ["127.0.0.0/8"]}}],
            listeners=listeners,
        ),
        plugins=[kairos_ipfilter],
    )
    async with http.get(allowed.url + "/guarded/x") as response:
        assert response.status == 200


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True
