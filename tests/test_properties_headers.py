"""Header-rule properties: hop-by-hop stripping, forwarding headers and request ids."""

from __future__ import annotations

import asyncio
import ipaddress
import re
from typing import Any

import pytest_asyncio
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from kairos_core.forwarding import (
    FORWARDING,
    HOP_BY_HOP,
    REWRITTEN_UPSTREAM,
    TrustedProxies,
    client_address,
    request_id,
    response_headers,
    upstream_headers,
)
from kairos_core.telemetry.tracing import next_traceparent
from kairos_core.testing.properties import bounded
from kairos_core.upstream.lean.request import serialize_head
from kairos_core.upstream.lean.response import ResponseParsing

BOUNDED = bounded(200)
GATEWAY_SET = {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded"}
ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:@/+=-"
TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")

# Header values as an HTTP parser hands them over: visible ASCII, spaces and tabs.
VALUES = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.just("\t"), max_size=30)
NAMES = st.sampled_from(
    [
        *HOP_BY_HOP,
        *FORWARDING,
        "Expect",
        "X-Private",
        "x-consumer",
        "Accept",
        "X-Request-Id",
        "Cookie",
    ]
).map(lambda name: "".join(c.upper() if i % 2 else c for i, c in enumerate(name))) | st.from_regex(
    TOKEN, fullmatch=True
).filter(lambda name: len(name) < 20)
HEADERS = st.lists(st.tuples(NAMES, VALUES), max_size=10)
PEERS = st.sampled_from(["127.0.0.1", "10.0.0.7", "::1", "2001:db8::5", "192.0.2.1"])


def parse_forwarded(value: str) -> list[dict[str, str]]:
    """RFC 7239 `Forwarded`: elements of `;`-separated pairs, values tokens or quoted-strings."""
    elements: list[dict[str, str]] = [{}]
    i = 0
    while i < len(value):
        while i < len(value) and value[i] in " \t":
            i += 1
        match = TOKEN.match(value, i)
        assert match, f"no parameter name at {i} in {value!r}"
        name, i = match.group().lower(), match.end()
        assert value[i : i + 1] == "=", value
        i += 1
        if value[i : i + 1] == '"':
            i += 1
            out = []
            while value[i] != '"':
                if value[i] == "\\":
                    i += 1
                out.append(value[i])
                i += 1
            i += 1
            text = "".join(out)
        else:
            match = TOKEN.match(value, i)
            assert match, value
            text, i = match.group(), match.end()
        assert name not in elements[-1], f"{name} twice in one element: {value!r}"
        elements[-1][name] = text
        while i < len(value) and value[i] in " \t":
            i += 1
        if i < len(value):
            separator = value[i]
            assert separator in ";,", value
            if separator == ",":
                elements.append({})
            i += 1
    return elements


@BOUNDED
@given(HEADERS, PEERS, st.sampled_from(["http", "https"]), VALUES)
@example([("Connection", "x-private"), ("X-Private", "1")], "127.0.0.1", "http", "h")
@example(
    [("Connection", "keep-alive"), ("Connection", "X-Private"), ("X-Private", "1")],
    "127.0.0.1",
    "http",
    "h",
)  # found by atheris: only the first Connection header was read
@example([], "127.0.0.1", "http", 'a", for=6.6.6.6;x="')  # Host broke out of the quotes
@example([], "::1", "https", "a\\")
def test_untrusted_clients_cannot_forward_or_spoof(
    headers: list[tuple[str, str]], peer: str, scheme: str, host: str
) -> None:
    incoming = CIMultiDictProxy(CIMultiDict(headers))
    out = upstream_headers(incoming, peer, scheme, host, trusted_peer=False)
    connection = {
        t.strip().lower() for v in incoming.getall("Connection", []) for t in v.split(",")
    }
    for name in out:
        lowered = name.lower()
        assert lowered not in HOP_BY_HOP and lowered != "expect", name
        assert lowered not in connection or lowered in GATEWAY_SET, name
    assert out.getall("X-Forwarded-For") == [peer]
    assert out.getall("X-Forwarded-Proto") == [scheme]
    assert out.getall("X-Forwarded-Host", []) == ([host] if host else [])
    elements = parse_forwarded(out["Forwarded"])
    assert len(out.getall("Forwarded")) == 1
    expected = {"for": f"[{peer}]" if ":" in peer else peer, "proto": scheme}
    assert elements == [{**expected, "host": host} if host else expected]
    kept = [(n, v) for n, v in headers if n.lower() not in HOP_BY_HOP | FORWARDING | connection]
    assert [(n, v) for n, v in out.items() if n.lower() not in GATEWAY_SET] == [
        (n, v) for n, v in kept if n.lower() != "expect"
    ]


@BOUNDED
@given(HEADERS, PEERS, st.sampled_from(["http", "https"]), VALUES, st.booleans())
def test_a_forwardable_request_is_a_copy_plus_forwarding(
    headers: list[tuple[str, str]], peer: str, scheme: str, host: str, trusted_peer: bool
) -> None:
    """The lean server's shortcut (no field to drop or rewrite) gives what the full rules give."""
    plain = [(n, v) for n, v in headers if n.lower() not in REWRITTEN_UPSTREAM]
    incoming = CIMultiDictProxy(CIMultiDict(plain))
    full = upstream_headers(incoming, peer, scheme, host, trusted_peer)
    quick = upstream_headers(incoming, peer, scheme, host, trusted_peer, forwardable=True)
    assert list(quick.items()) == list(full.items())


@BOUNDED
@given(HEADERS, PEERS, VALUES)
def test_trusted_proxies_append_to_the_chain(
    headers: list[tuple[str, str]], peer: str, host: str
) -> None:
    incoming = CIMultiDictProxy(CIMultiDict(headers))
    out = upstream_headers(incoming, peer, "http", host, trusted_peer=True)
    for name in out:
        assert name.lower() not in HOP_BY_HOP, name
    prior = incoming.get("X-Forwarded-For")
    assert out["X-Forwarded-For"] == (f"{prior}, {peer}" if prior else peer)
    assert out["Forwarded"].endswith(parse_forwarded_tail(peer, host))


def parse_forwarded_tail(peer: str, host: str) -> str:
    """The element the gateway appends for `peer`, rendered as `upstream_headers` renders it."""
    node = f'"[{peer}]"' if ":" in peer else peer
    element = f"for={node};proto=http"
    if host:
        quoted = host.replace("\\", "\\\\").replace('"', '\\"')
        element += f";host={host}" if TOKEN.fullmatch(host) else f';host="{quoted}"'
    return element


@BOUNDED
@given(HEADERS)
@example([("Connection", "close"), ("Connection", "X-Hop"), ("X-Hop", "1")])
def test_responses_lose_connection_specific_headers(headers: list[tuple[str, str]]) -> None:
    incoming = CIMultiDict(headers)
    out = response_headers(incoming)
    connection = {
        t.strip().lower() for v in incoming.getall("Connection", []) for t in v.split(",")
    }
    assert all(n.lower() not in HOP_BY_HOP | connection for n in out)


@BOUNDED
@given(HEADERS)
@example([("X-Hop", "1"), ("Connection", "keep-alive"), ("Connection", "X-Hop, close")])
@example([("Connection", "close"), ("Close", "secret"), ("X-A", "1")])  # found by review
def test_the_lean_client_drops_what_the_shared_rule_drops(headers: list[tuple[str, str]]) -> None:
    """The upstream connection's one-pass filter keeps exactly what `response_headers` keeps."""
    parsed = ResponseParsing.__new__(ResponseParsing)  # the head as the parser left it
    parsed.raw_headers = headers
    expected = response_headers(CIMultiDict(headers))
    assert list(parsed.end_to_end_headers().items()) == list(expected.items())


@BOUNDED
@given(st.none() | st.text(max_size=210) | st.text(ID_ALPHABET, max_size=210))
@example("abc\n")  # `$` let a trailing newline through before the fix
@example("a" * 200)
@example("a" * 201)
def test_request_ids_outside_the_alphabet_are_replaced(incoming: str | None) -> None:
    rid = request_id(incoming)
    valid = incoming is not None and 0 < len(incoming) <= 200 and set(incoming) <= set(ID_ALPHABET)
    if valid:
        assert rid == incoming
    else:
        assert re.fullmatch(r"[0-9a-f]{32}", rid), rid


@BOUNDED
@given(
    PEERS,
    st.lists(st.sampled_from(["10.0.0.1", "10.0.0.2", "6.6.6.6", "", " ", "junk", "::1"])),
)
def test_client_address_is_the_peer_unless_a_trusted_proxy_forwarded(
    peer: str, chain: list[str]
) -> None:
    trusted = TrustedProxies([ipaddress.ip_network("10.0.0.0/8")])
    headers = {"X-Forwarded-For": ",".join(chain)}
    found = client_address(peer, headers, trusted)
    if peer not in trusted:
        assert found == peer
    else:
        hops = [h.strip() for h in chain if h.strip()]
        untrusted = [h for h in hops if h not in trusted]
        assert found == (untrusted[-1] if untrusted else hops[0] if hops else peer)


@pytest_asyncio.fixture
async def gateway_and_backend(kairos_gateway: Any, echo_backend: Any) -> tuple[Any, Any]:
    """A gateway with one route to the echo backend; `X-Consumer` is the consumer header."""
    route = {"prefix": "/", "upstream": {"backends": [{"url": echo_backend.url}]}}
    return await kairos_gateway({"routes": [route]}), echo_backend


def raw_head(headers: list[tuple[str, str]]) -> bytes:
    """A GET request head with these extra header lines."""
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers)
    return f"GET /p HTTP/1.1\r\nHost: gw\r\n{lines}Connection: close\r\n\r\n".encode()


@settings(BOUNDED, max_examples=40, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["X-Consumer", "x-consumer", "X-CONSUMER", "X-Forwarded-For"])
            | st.sampled_from(["Forwarded", "X-Forwarded-Proto", "X-Request-Id", "X-Other"]),
            VALUES.map(str.strip).filter(bool),
        ),
        max_size=5,
    )
)
async def test_through_the_gateway_clients_cannot_spoof_identity(
    gateway_and_backend: Any, headers: list[tuple[str, str]]
) -> None:
    gw, backend = gateway_and_backend
    host, port = gw.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(raw_head(headers))
    await writer.drain()
    reply = await reader.read()
    writer.close()
    assert reply.startswith(b"HTTP/1.1 200"), reply[:100]
    received = backend.records[-1].header_list
    backend.records.clear()

    def values(name: str) -> list[str]:
        return [v for n, v in received if n.lower() == name.lower()]

    assert values("X-Consumer") == []
    assert values("X-Forwarded-For") == ["127.0.0.1"]
    assert values("X-Forwarded-Proto") == ["http"]
    assert values("Forwarded") == ["for=127.0.0.1;proto=http;host=gw"]
    sent_ids = [v for n, v in headers if n.lower() == "x-request-id"]
    [rid] = values("X-Request-Id")
    if len(sent_ids) == 1 and request_id(sent_ids[0]) == sent_ids[0]:
        assert rid == sent_ids[0]
    else:
        assert re.fullmatch(r"[0-9a-f]{32}", rid) or rid in sent_ids[:1], rid


@BOUNDED
@given(HEADERS, st.sampled_from(["GET", "POST"]))
@example([("Connection", "keep-alive"), ("Connection", "X-Hop"), ("X-Hop", "1")], "GET")
@example([("x-hop", "1"), ("CONNECTION", "x-HOP, close"), ("Content-Length", "3")], "POST")
@example([("Connection", "close"), ("Close", "secret")], "GET")  # found by review
def test_the_upstream_head_carries_no_connection_field(
    headers: list[tuple[str, str]], method: str
) -> None:
    """What `serialize_head` writes: no hop-by-hop field, none a Connection header names (any of
    them), no Expect, one Host and the framing it computes itself."""
    fields = CIMultiDict(headers)
    head, chunked = serialize_head(method, "/p", fields, "backend:80", None, False)
    lines = head.decode("utf-8", "surrogateescape").split("\r\n")
    assert lines[0] == f"{method} /p HTTP/1.1" and lines[-2:] == ["", ""] and not chunked
    named = {t.strip().lower() for v in fields.getall("Connection", []) for t in v.split(",")}
    sent = [line.partition(":")[0].lower() for line in lines[1:-2]]
    assert not set(sent) & (HOP_BY_HOP | named | {"expect"}) - {"host", "content-length"}
    assert sent.count("host") == 1
    framing = sent.count("content-length")
    declared = any(n.lower() == "content-length" for n, _ in headers)
    assert framing == (1 if method == "POST" or declared else 0)


def test_random_ids_are_fixed_width_hex_and_do_not_repeat() -> None:
    """Request ids, trace ids and span ids: lower-case hex of the full width, leading zeros
    kept, and no repeats in 20,000 draws."""
    ids = [request_id(None) for _ in range(10_000)]
    traces = [next_traceparent(None) for _ in range(10_000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", rid) for rid in ids)
    assert all(re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", t[2]) for t in traces)
    assert len(set(ids) | {t[0] for t in traces}) == 20_000
    assert any(rid.startswith("0") for rid in ids)  # 1 in 16 does: the width is not trimmed
