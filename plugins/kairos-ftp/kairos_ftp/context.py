"""What every session of one listener shares: settings, pools, ports, TLS and metrics."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from kairos_core import UpstreamPool
from kairos_ftp.data import PortAllocator
from kairos_ftp.metrics import ListenerMetrics
from kairos_ftp.settings import FtpListenerSettings

FEATURES_WITHOUT_LOGIN = ("EPRT", "EPSV", "PASV", "UTF8")
"""Features the gateway itself provides whatever the backend."""

GATEWAY_ONLY = frozenset({"AUTH", "PBSZ", "PROT", "CCC"})
"""Features the gateway decides (TLS terminates here), never the backend's."""


@dataclass(slots=True)
class ListenerContext:
    """Shared, read-mostly state of one FTP listener."""

    name: str
    settings: FtpListenerSettings
    metrics: ListenerMetrics
    pools: Callable[[], Mapping[str, UpstreamPool]]
    """The current configuration's pools (they change on reload)."""
    ports: PortAllocator
    tls: ssl.SSLContext | None

    def tls_features(self) -> list[str]:
        """The FEAT lines for FTPS, when a certificate is configured."""
        return ["AUTH TLS", "PBSZ", "PROT"] if self.tls is not None else []

    def route(self, user: bytes) -> tuple[bytes, str] | str:
        """(backend user name, pool name) for a `USER` argument, or why it cannot log in."""
        settings = self.settings
        name, separator, site = user.rpartition(b"@")
        if separator and settings.aliases:
            pool = settings.aliases.get(site.decode("ascii", "replace").lower())
            if pool is not None:
                if not name:
                    return "User name missing before @site."
                return name, pool
        if settings.upstream is not None:
            return user, settings.upstream
        return "Unknown site: log in as user@site."

    def pool(self, name: str) -> UpstreamPool | None:
        """The pool called `name` in the current configuration."""
        return self.pools().get(name)


def patch_features(lines: tuple[bytes, ...], tls_lines: list[str]) -> bytes:
    """A backend's 211 FEAT reply with the gateway's own data and TLS features in place."""
    body = [line for line in lines[1:-1] if line.startswith(b" ")]
    kept: list[bytes] = []
    names: set[str] = set()
    for line in body:
        name = line.strip().split(b" ", 1)[0].decode("ascii", "replace").upper()
        if name in GATEWAY_ONLY:
            continue
        names.add(name)
        kept.append(line)
    for feature in (*FEATURES_WITHOUT_LOGIN, *tls_lines):
        if feature.split(" ", 1)[0] not in names:
            kept.append(f" {feature}\r\n".encode())
            names.add(feature.split(" ", 1)[0])
    return b"211-Features:\r\n" + b"".join(kept) + b"211 End\r\n"
