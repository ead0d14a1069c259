"""An FTP health probe for pools of `ftp://` / `ftps://` backends: connect, read 220, QUIT."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable

from kairos_core import Backend, UpstreamPool
from kairos_ftp.channel import MAX_LINE, ChannelClosed, ControlChannel, ProtocolError

FTP_SCHEMES = frozenset({"ftp", "ftps"})


def is_ftp_pool(pool: UpstreamPool) -> bool:
    """Whether every backend of the pool speaks FTP."""
    return all(backend.scheme in FTP_SCHEMES for backend in pool.backends)


async def probe_ftp(backend: Backend) -> tuple[bool, str]:
    """One probe: healthy when the server greets with 220 (its timeout is the core's)."""
    reader, writer = await asyncio.open_connection(backend.host, backend.port, limit=MAX_LINE)
    channel = ControlChannel(reader, writer)
    try:
        try:
            greeting = await channel.read_reply()
            while greeting.preliminary:
                greeting = await channel.read_reply()
        except (ChannelClosed, ProtocolError) as exc:
            return False, f"no FTP greeting: {exc}"
        if greeting.code != 220:
            return False, f"greeting {greeting.code} {greeting.text[:80]}"
        with contextlib.suppress(OSError, ChannelClosed, ProtocolError):
            await channel.command("QUIT")
            await asyncio.wait_for(channel.read_reply(), 1.0)
        return True, f"220 {greeting.text[:80]}"
    finally:
        await channel.aclose()


def install_probes(
    pools: Iterable[UpstreamPool],
    probe: Callable[[Backend], Awaitable[tuple[bool, str]]] = probe_ftp,
) -> None:
    """Give every FTP pool the FTP probe (active checks would otherwise send HTTP)."""
    for pool in pools:
        if is_ftp_pool(pool) and pool.health_probe is None:
            pool.health_probe = probe
