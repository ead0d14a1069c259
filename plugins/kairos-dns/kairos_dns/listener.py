"""The `dns` listener: UDP and TCP sockets on one address, answering through a DnsResolver."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from kairos_core import GatewayServices
from kairos_dns.config import DnsListenerConfig
from kairos_dns.ratelimit import ALLOW, SLIP, ClientRateLimiter
from kairos_dns.resolver import DnsResolver
from kairos_dns.state import DnsState
from kairos_dns.steering import steer_by_client
from kairos_dns.tcp import TcpSessions
from kairos_dns.upstream import grow_receive_buffer
from kairos_dns.wire import REFUSED, Malformed, Query, error_reply, parse_query, truncated_reply

if TYPE_CHECKING:
    from kairos_core.config.models import ListenerConfig

log = logging.getLogger("kairos.dns")

_BIND_TRIES = 20


def listener_key(listener: ListenerConfig) -> str:
    """How DoH routes and reloads find a listener's resolver: its name, else host:port."""
    return f"listener:{listener.name or f'{listener.host}:{listener.port}'}"


class DnsListener:
    """A running `dns` listener (RunningService): closes its sockets and pending work."""

    def __init__(
        self,
        listener: ListenerConfig,
        settings: DnsListenerConfig,
        resolver: DnsResolver,
        state: DnsState,
        instance_id: str,
    ) -> None:
        self.listener = listener
        self.instance_id = instance_id
        self.key = listener_key(listener)
        self.settings = settings
        self.resolver = resolver
        self.metrics = state.metrics
        self.limiter = (
            ClientRateLimiter(settings.rate_limit, state.clock) if settings.rate_limit else None
        )
        self.port = 0
        self.udp: asyncio.DatagramTransport | None = None
        self.tcp: TcpSessions | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._max_inflight = settings.max_inflight
        self._payload = settings.max_udp_payload
        self._loop = asyncio.get_running_loop()
        self.workers = 1
        self.steered = False

    def apply(self, settings: DnsListenerConfig, resolver: DnsResolver, state: DnsState) -> None:
        """Take a reloaded configuration's resolver and limits (addresses need a restart)."""
        self.resolver = resolver
        self.metrics = state.metrics
        if settings.rate_limit != self.settings.rate_limit:
            self.limiter = (
                ClientRateLimiter(settings.rate_limit, state.clock) if settings.rate_limit else None
            )
        self.settings = settings
        self._max_inflight = settings.max_inflight
        self._payload = settings.max_udp_payload
        if self.tcp is not None:
            self.tcp.configure(settings)
        self.steer()

    def steer(self) -> None:
        """With several workers and a rate limit, keep each client address on one worker.

        Without a rate limit there is no per-client state, and the kernel's default spread
        (by address and port) shares the load of one busy client among the workers.
        """
        settings = self.settings
        if self.steered or self.workers < 2 or not settings.steer_clients:
            return
        if settings.rate_limit is None:
            return
        if self.udp is not None:
            sock = self.udp.get_extra_info("socket")
            if sock is not None:
                self.steered = steer_by_client(sock, self.workers)
        if self.tcp is not None:
            self.steered = self.tcp.steer(self.workers) or self.steered

    # -- UDP -----------------------------------------------------------------------------------

    def datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        """One UDP packet: limit, parse, answer from cache or start an upstream resolution."""
        limiter = self.limiter
        verdict = ALLOW if limiter is None else limiter.check(addr[0])
        try:
            query = parse_query(data)
        except Malformed as exc:
            self.metrics.malformed["udp"].inc()
            if exc.reply is not None and verdict == ALLOW:
                self._send(exc.reply, addr)
            return
        if verdict != ALLOW:
            self.metrics.rate_limited["udp"].inc()
            if verdict == SLIP:
                self._send(truncated_reply(query, error_reply(query, 0), self._payload), addr)
            return
        answer = self.resolver.cached(query, "udp")
        if answer is not None:
            self.reply_udp(query, answer, addr)
            return
        if len(self._tasks) >= self._max_inflight:
            return  # overloaded: dropping is what a busy resolver does; the client retries
        task = self._loop.create_task(self._resolve_udp(query, data, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resolve_udp(self, query: Query, data: bytes, addr: tuple[str, int]) -> None:
        try:
            answer = await self.resolver.resolve(query, data, "udp")
        except Exception:
            log.exception("answering %r failed", data[:64])
            return
        self.reply_udp(query, answer, addr)

    def reply_udp(self, query: Query, answer: bytes, addr: tuple[str, int]) -> None:
        """Send `answer`, truncated (TC) if it exceeds what the client can take over UDP."""
        self.metrics.answered("udp", query.qtype, answer)
        limit = min(query.udp_size, self._payload) if query.edns else 512
        if len(answer) > limit:
            answer = truncated_reply(query, answer, self._payload)
        self._send(answer, addr)

    def _send(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.udp is not None and not self.udp.is_closing():
            self.udp.sendto(data, addr)

    # -- TCP -----------------------------------------------------------------------------------

    def limited_tcp(self, address: str, query: Query) -> bytes | None:
        """REFUSED for a TCP client over its rate, else None."""
        if self.limiter is not None and self.limiter.check(address) != ALLOW:
            self.metrics.rate_limited["tcp"].inc()
            return error_reply(query, REFUSED)
        return None

    async def close(self) -> None:
        """Stop both sockets and cancel queries still waiting for upstream."""
        _RUNNING.get(self.instance_id, set()).discard(self)
        if self.udp is not None:
            self.udp.close()
        if self.tcp is not None:
            await self.tcp.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, listener: DnsListener) -> None:
        self.listener = listener

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            self.listener.datagram(data, addr)
        except Exception:  # one bad packet must never take the listener down
            log.exception("DNS packet from %s could not be handled", addr[0])

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP error on the DNS listener: %s", exc)


_RUNNING: dict[str, set[DnsListener]] = {}
"""Listeners of each running gateway in this process (by instance id), rebound on reload."""


def running_listeners(instance_id: str) -> set[DnsListener]:
    """The DNS listeners this process runs for one gateway instance."""
    return _RUNNING.get(instance_id, set())


def _udp_socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    grow_receive_buffer(sock)
    return sock


async def start_listener(
    listener: ListenerConfig,
    settings: DnsListenerConfig,
    services: GatewayServices,
    clock: Callable[[], float],
) -> DnsListener:
    """Bind UDP and TCP on the listener's address (a free port for both when port is 0)."""
    state = DnsState.of(services, clock)
    resolver = state.resolver(listener_key(listener), settings)
    service = DnsListener(listener, settings, resolver, state, services.instance_id)
    reuse_port = services.workers > 1
    loop = asyncio.get_running_loop()
    for attempt in range(_BIND_TRIES):
        tcp = TcpSessions(service, settings) if settings.tcp else None
        try:
            port = listener.port
            if tcp is not None:
                port = await tcp.listen(listener.host, port, reuse_port)
            if settings.udp:
                sock = _udp_socket(listener.host, port, reuse_port)
                transport, _protocol = await loop.create_datagram_endpoint(
                    lambda: _UdpProtocol(service), sock=sock
                )
                service.udp = transport
                port = port or sock.getsockname()[1]
        except OSError:
            if tcp is not None:
                await tcp.close()
            if listener.port or attempt == _BIND_TRIES - 1:
                raise
            continue  # the free TCP port was taken for UDP: pick another
        service.tcp = tcp
        service.port = port
        break
    service.workers = services.workers if reuse_port else 1
    service.steer()
    _RUNNING.setdefault(services.instance_id, set()).add(service)
    log.info(
        "DNS listening on %s:%d (%s)",
        listener.host,
        service.port,
        "+".join(t for t, on in (("udp", settings.udp), ("tcp", settings.tcp)) if on),
    )
    return service


def rebind(services: GatewayServices) -> None:
    """After a reload: move running listeners onto the new configuration's resolvers."""
    state = services.shared.get("dns")
    for service in list(running_listeners(services.instance_id)):
        config = next(
            (
                (index, item)
                for index, item in enumerate(services.config.listeners)
                if item.protocol == "dns" and listener_key(item) == service.key
            ),
            None,
        )
        if config is None or not isinstance(state, DnsState):
            log.warning(
                "DNS listener %s left the configuration; it keeps its old settings until a restart",
                service.key,
            )
            continue
        index, listener = config
        settings = DnsListenerConfig.model_validate(listener.config)
        resolver = state.resolvers.get(service.key)
        if resolver is None:
            continue
        if (listener.host, listener.port) != (service.listener.host, service.listener.port):
            log.warning("listeners[%d]: a DNS listener's address changes on restart only", index)
        old = service.resolver
        if (
            resolver is not old
            and resolver.cache is not None
            and old.cache is not None
            and old.settings.zones == resolver.settings.zones
        ):
            resolver.cache.adopt(old.cache)
        service.apply(settings, resolver, state)
