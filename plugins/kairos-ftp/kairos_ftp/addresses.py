"""Data-connection addresses: PORT/EPRT arguments and PASV/EPSV replies, parsed and formatted."""

from __future__ import annotations

import ipaddress
import re

_PASV_RE = re.compile(rb"(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3})")
_EPSV_RE = re.compile(rb"\((.)\1\1(\d{1,5})\1\)")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressError(ValueError):
    """A malformed PORT/EPRT argument or PASV/EPSV reply."""


def normalize_ip(text: str) -> IPAddress:
    """An IP address, with IPv4-mapped IPv6 (`::ffff:a.b.c.d`) turned into plain IPv4."""
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def same_host(a: str, b: str) -> bool:
    """Whether two textual addresses are the same host (IPv4-mapped forms compare equal)."""
    try:
        return normalize_ip(a) == normalize_ip(b)
    except ValueError:
        return False


def parse_port_arg(arg: bytes) -> tuple[str, int]:
    """`h1,h2,h3,h4,p1,p2` -> (ip, port)."""
    parts = arg.strip().split(b",")
    if len(parts) != 6:
        raise AddressError("PORT takes h1,h2,h3,h4,p1,p2")
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        raise AddressError("PORT takes six decimal numbers") from None
    if any(not 0 <= n <= 255 for n in numbers):
        raise AddressError("PORT numbers must be 0..255")
    ip = ".".join(str(n) for n in numbers[:4])
    return ip, numbers[4] * 256 + numbers[5]


def parse_eprt_arg(arg: bytes) -> tuple[str, int]:
    """`|proto|address|port|` (any delimiter) -> (ip, port)."""
    text = arg.strip().decode("ascii", "replace")
    if len(text) < 5:
        raise AddressError("EPRT takes |proto|address|port|")
    delimiter = text[0]
    fields = text.split(delimiter)
    if len(fields) != 5 or fields[0] or fields[4]:
        raise AddressError("EPRT takes |proto|address|port|")
    proto, host, port_text = fields[1:4]
    if proto not in ("1", "2"):
        raise AddressError("EPRT protocol must be 1 (IPv4) or 2 (IPv6)")
    try:
        address = ipaddress.ip_address(host)
        port = int(port_text)
    except ValueError:
        raise AddressError("EPRT address or port is invalid") from None
    if (proto == "1") != (address.version == 4):
        raise AddressError("EPRT protocol does not match the address")
    if not 0 < port <= 65535:
        raise AddressError("EPRT port must be 1..65535")
    return str(address), port


def format_port_arg(ip: str, port: int) -> str:
    """(IPv4, port) -> the PORT argument."""
    return ",".join([*ip.split("."), str(port >> 8), str(port & 0xFF)])


def format_eprt_arg(ip: str, port: int) -> str:
    """(ip, port) -> the EPRT argument."""
    version = ipaddress.ip_address(ip).version
    return f"|{1 if version == 4 else 2}|{ip}|{port}|"


def pasv_reply_text(ip: str, port: int) -> str:
    """The text of a 227 reply for an IPv4 address."""
    return f"Entering Passive Mode ({format_port_arg(ip, port)})."


def epsv_reply_text(port: int) -> str:
    """The text of a 229 reply."""
    return f"Entering Extended Passive Mode (|||{port}|)"


def parse_pasv_reply(text: bytes) -> tuple[str, int]:
    """A 227 reply -> (ip, port)."""
    found = _PASV_RE.search(text)
    if found is None:
        raise AddressError(f"no address in PASV reply {text[:80]!r}")
    numbers = [int(n) for n in found.groups()]
    if any(n > 255 for n in numbers):
        raise AddressError("PASV reply numbers out of range")
    return ".".join(str(n) for n in numbers[:4]), numbers[4] * 256 + numbers[5]


def parse_epsv_reply(text: bytes) -> int:
    """A 229 reply -> port."""
    found = _EPSV_RE.search(text)
    if found is None:
        raise AddressError(f"no port in EPSV reply {text[:80]!r}")
    port = int(found.group(2))
    if not 0 < port <= 65535:
        raise AddressError("EPSV reply port out of range")
    return port
