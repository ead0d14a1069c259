"""Fuzz target: a request head's header lines through the gateway's forwarding header rules."""

from __future__ import annotations

import ipaddress
import re

from multidict import CIMultiDict, CIMultiDictProxy

from kairos_core.forwarding import (
    FORWARDING,
    HOP_BY_HOP,
    TrustedProxies,
    client_address,
    request_id,
    response_headers,
    upstream_headers,
)

TRUSTED = TrustedProxies([ipaddress.ip_network("10.0.0.0/8")])
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,200}|[0-9a-f]{32}")


def parse_head(data: bytes) -> CIMultiDict[str]:
    """Header fields as an HTTP parser would hand them over (latin-1, no CR/LF in values)."""
    headers: CIMultiDict[str] = CIMultiDict()
    for line in data.decode("latin-1").split("\r\n"):
        name, colon, value = line.partition(":")
        if colon and name and "\n" not in line and "\r" not in line:
            headers.add(name.strip(), value.strip())
    return headers


def host_param(host: str) -> str:
    """The `;host=` parameter: a token, or a quoted-string with `\\` and `"` escaped."""
    if not host:
        return ""
    if _TOKEN.fullmatch(host):
        return f";host={host}"
    return ';host="' + host.replace("\\", "\\\\").replace('"', '\\"') + '"'


def test_one_input(data: bytes) -> None:
    """Invariants: no hop-by-hop or Connection-named header leaves; untrusted peers forward nothing."""
    incoming = CIMultiDictProxy(parse_head(data))
    peer = "10.1.2.3" if data[:1] == b"T" else "192.0.2.7"
    trusted = peer in TRUSTED
    host = incoming.get("Host", "")
    out = upstream_headers(incoming, peer, "http", host, trusted)
    named = {t.strip().lower() for v in incoming.getall("Connection", []) for t in v.split(",")}
    for name in out:
        lowered = name.lower()
        assert lowered not in HOP_BY_HOP, name
        assert lowered not in named or lowered in FORWARDING, name
    if not trusted:
        assert out.getall("X-Forwarded-For") == [peer]
        assert out.getall("Forwarded") == [f"for={peer};proto=http" + host_param(host)]
    for name in response_headers(incoming):
        assert name.lower() not in HOP_BY_HOP | named
    assert _ID.fullmatch(request_id(incoming.get("X-Request-Id")))
    client_address(peer, incoming, TRUSTED)
