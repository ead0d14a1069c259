"""Proxy header rules: hop-by-hop removal, X-Forwarded-*/Forwarded, client address, request id."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from aiohttp.hdrs import FORWARDED, X_FORWARDED_FOR, X_FORWARDED_HOST, X_FORWARDED_PROTO
from multidict import CIMultiDict, CIMultiDictProxy

from kairos_core.telemetry.tracing import TRACEPARENT, random_hex

if TYPE_CHECKING:
    from kairos_core.context import RequestContext

# RFC 9110 7.6.1 connection-specific fields, plus the legacy ones proxies must not forward.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
FORWARDING = frozenset({"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded"})
# The gateway answers `Expect: 100-continue` itself before streaming the body up.
# `_` spellings of the framing headers: some backends read `_` as `-`, so a client could frame a
# request one way for the gateway and another for the backend. Dropped at no extra cost.
_REQUEST_DROP = HOP_BY_HOP | {"expect", "transfer_encoding", "content_length"}
REWRITTEN_UPSTREAM = _REQUEST_DROP | FORWARDING
"""Request fields `upstream_headers` drops, extends or replaces; a request without any of them
is copied whole."""
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,200}$")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """Decides whether a peer address may supply X-Forwarded-* / Forwarded headers."""

    def __init__(self, networks: Iterable[Network]) -> None:
        self._networks = tuple(networks)
        self._cache: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return bool(self._networks)

    def __contains__(self, address: str) -> bool:
        if not self._networks:
            return False
        cached = self._cache.get(address)
        if cached is None:
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                cached = False
            else:
                cached = any(ip in net for net in self._networks)
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[address] = cached
        return cached


def client_address(peer: str, headers: Mapping[str, str], trusted: TrustedProxies) -> str:
    """The real client: the peer, or the rightmost untrusted X-Forwarded-For hop via trusted peers."""
    if peer not in trusted:
        return peer
    chain = headers.get("X-Forwarded-For")
    if not chain:
        return peer
    hops = [hop.strip() for hop in chain.split(",") if hop.strip()]
    for hop in reversed(hops):
        if hop not in trusted:
            return hop
    return hops[0] if hops else peer


def upstream_headers(
    incoming: CIMultiDictProxy[str],
    peer: str,
    scheme: str,
    host: str,
    trusted_peer: bool,
    forwardable: bool = False,
) -> CIMultiDict[str]:
    """Headers to send upstream: end-to-end ones kept, forwarding headers appended.

    `forwardable` says `incoming` holds none of `REWRITTEN_UPSTREAM` (the lean server knows
    from parsing), so every field is kept and the forwarding ones are new.
    """
    if forwardable:
        out: CIMultiDict[str] = CIMultiDict(incoming)  # one copy: no field is dropped or replaced
        out.add(X_FORWARDED_FOR, peer)
        out.add(X_FORWARDED_PROTO, scheme)
        element = f"for={_forwarded_node(peer)};proto={scheme}"
        if host:
            out.add(X_FORWARDED_HOST, host)
            element += _forwarded_host(host)
        out.add(FORWARDED, element)
        return out
    drop = _REQUEST_DROP
    if "Connection" in incoming:
        drop = drop | connection_named(incoming)
    if not trusted_peer:
        drop = drop | FORWARDING
    out = CIMultiDict()
    for name, value in incoming.items():
        if name.lower() not in drop:
            out.add(name, value)
    prior_for = incoming.get("X-Forwarded-For") if trusted_peer else None
    out["X-Forwarded-For"] = f"{prior_for}, {peer}" if prior_for else peer
    if not (trusted_peer and "X-Forwarded-Proto" in incoming):
        out["X-Forwarded-Proto"] = scheme
    if not (trusted_peer and "X-Forwarded-Host" in incoming) and host:
        out["X-Forwarded-Host"] = host
    element = f"for={_forwarded_node(peer)};proto={scheme}"
    if host:
        element += _forwarded_host(host)
    prior = incoming.get("Forwarded") if trusted_peer else None
    out["Forwarded"] = f"{prior}, {element}" if prior else element
    return out


class RequestHeaderRules:
    """Makes a request's upstream headers (`RequestContext.headers`) when a stage first asks."""

    __slots__ = ("consumer_header", "id_header", "scheme", "trusted")

    def __init__(
        self,
        trusted: TrustedProxies | None,
        scheme: str,
        id_header: str,
        consumer_header: str | None,
    ) -> None:
        self.trusted = trusted
        self.scheme = scheme
        """The listener's scheme (X-Forwarded-Proto and Forwarded's proto)."""
        self.id_header = id_header
        self.consumer_header = consumer_header

    def __call__(self, ctx: RequestContext) -> CIMultiDict[str]:
        """End-to-end headers plus forwarding ones, the request id and the trace context."""
        request = ctx.request
        peer: str = request.protocol.client_peer  # type: ignore[union-attr]
        trusted = self.trusted
        trusted_peer = trusted is not None and peer in trusted
        headers = upstream_headers(
            request.headers,
            peer,
            self.scheme,
            ctx.host,
            trusted_peer,
            getattr(request, "forwardable", False),
        )
        headers[self.id_header] = ctx.request_id
        if self.consumer_header:
            headers.popall(self.consumer_header, None)  # only the gateway says who the consumer is
        if ctx.traceparent is not None:
            headers[TRACEPARENT] = ctx.traceparent
        return headers


def response_headers(incoming: CIMultiDictProxy[str] | CIMultiDict[str]) -> CIMultiDict[str]:
    """A backend's response headers minus the connection-specific ones."""
    return end_to_end_fields(incoming.items())


def end_to_end_fields(fields: Iterable[tuple[str, str]]) -> CIMultiDict[str]:
    """Response fields minus the connection-specific ones, in order, in one pass (the lean
    client hands over its parsed pairs, others a multidict's items)."""
    kept = []
    connection: str | None = None
    for pair in fields:
        lower = pair[0].lower()
        if lower not in HOP_BY_HOP:
            kept.append(pair)
        elif lower == "connection":
            connection = pair[1] if connection is None else f"{connection},{pair[1]}"
    if connection is not None:
        named = named_by_connection(connection)
        if named:  # the fields it names are connection-specific too
            kept = [pair for pair in kept if pair[0].lower() not in named]
    return CIMultiDict(kept)


_NAMED: dict[str, frozenset[str]] = {}


def named_by_connection(value: str) -> frozenset[str]:
    """The field names a `Connection` value lists beyond the hop-by-hop ones (memoised: a
    backend sends the same `keep-alive` on every response). `close` is kept: a field of that
    name is connection-specific too."""
    named = _NAMED.get(value)
    if named is None:
        tokens = {token.strip().lower() for token in value.split(",")}
        named = frozenset(tokens - HOP_BY_HOP - {""})
        if len(_NAMED) > 1024:
            _NAMED.clear()
        _NAMED[value] = named
    return named


def connection_named(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> frozenset[str]:
    """What every `Connection` header lists (a list field: it may repeat) beyond hop-by-hop."""
    return frozenset().union(*map(named_by_connection, headers.getall("Connection", ())))


def request_id(incoming: str | None) -> str:
    """Propagate a well-formed incoming request id, or make a new random 128-bit one."""
    if incoming and _REQUEST_ID_RE.fullmatch(incoming):
        return incoming
    return random_hex(16)


def _forwarded_node(address: str) -> str:
    if ":" in address:
        return f'"[{address}]"'
    return address


_TOKEN_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


_HOST_PARAMS: dict[str, str] = {}


def _forwarded_host(host: str) -> str:
    """The `;host=` parameter of a Forwarded element (quoted unless a token), memoised."""
    param = _HOST_PARAMS.get(host)
    if param is None:
        if _TOKEN_RE.fullmatch(host):
            param = f";host={host}"
        else:  # a quoted-string: escape `\` and `"` so a Host header cannot add elements
            param = ';host="' + host.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if len(_HOST_PARAMS) > 1024:
            _HOST_PARAMS.clear()
        _HOST_PARAMS[host] = param
    return param
