"""The upgrade handshake: ask the backend, and answer the client with the backend's terms."""

from __future__ import annotations

import base64
import hashlib

from multidict import CIMultiDict

from kairos_core.context import RequestContext

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_CLIENT_HEADERS = ("Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Protocol")
_ANSWER_HEADERS = ("Sec-WebSocket-Accept", "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions")
MAX_HEAD = 64 * 1024


class HandshakeError(Exception):
    """The backend's answer to the upgrade could not be read."""


def accept_key(key: str) -> str:
    """Sec-WebSocket-Accept for a client's Sec-WebSocket-Key (RFC 6455 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def upgrade_request(ctx: RequestContext, host: str, compression: bool) -> bytes:
    """The handshake sent to the backend: the client's upgrade headers plus the gateway's own."""
    incoming = ctx.request.headers
    lines = [
        f"GET {ctx.upstream_target} HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
    ]
    for name, value in ctx.headers.items():
        lower = name.lower()
        if lower not in ("host", "content-length") and not lower.startswith("sec-websocket-"):
            lines.append(f"{name}: {value}")
    for name in _CLIENT_HEADERS:
        client_value = incoming.get(name)
        if client_value is not None:
            lines.append(f"{name}: {client_value}")
    extensions = incoming.get("Sec-WebSocket-Extensions")
    if compression and extensions:
        lines.append(f"Sec-WebSocket-Extensions: {extensions}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def parse_head(head: bytes) -> tuple[int, str, CIMultiDict[str]]:
    """Status, reason and headers of the backend's answer to the upgrade."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise HandshakeError(f"invalid status line {lines[0][:80]!r}")
    headers: CIMultiDict[str] = CIMultiDict()
    for line in lines[1:]:
        if line:
            name, sep, value = line.partition(":")
            if not sep:
                raise HandshakeError("invalid header line in the handshake answer")
            headers.add(name.strip(), value.strip())
    return int(parts[1]), parts[2] if len(parts) > 2 else "", headers


def answer_headers(backend: CIMultiDict[str]) -> dict[str, str]:
    """Headers of the 101 sent to the client: the backend's accept, protocol and extensions."""
    out = {"Upgrade": "websocket", "Connection": "Upgrade"}
    for name in _ANSWER_HEADERS:
        value = backend.get(name)
        if value is not None:
            out[name] = value
    return out
