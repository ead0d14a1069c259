"""The narrow seam through which every HTTP request reaches a backend.

`UpstreamClient.send` takes a backend, a request-target, headers and a body (bytes or an async
stream) and returns the response head with a body stream. Pooling, keep-alive, TLS and name
resolution live behind it, so a leaner connection layer can replace this aiohttp one.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from typing import Protocol

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from kairos_core.config.models import ResolverConfig, Timeouts, UpstreamConfig
from kairos_core.upstream.pool import Backend
from kairos_core.upstream.resolver import TTLResolver


class UpstreamError(Exception):
    """A backend could not produce a response head."""

    def __init__(self, kind: str, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.kind = kind
        """`connect`, `connect_timeout`, `timeout`, `reset` or `protocol`."""
        self.sent = sent
        """Whether any request bytes may have reached the backend."""

    @property
    def status(self) -> int:
        """The HTTP status the gateway answers with."""
        return 504 if self.kind in ("timeout", "connect_timeout") else 502


class UpstreamResponse:
    """A backend's response head; `body` streams the rest and releases the connection."""

    __slots__ = ("_raw", "body", "end_to_end", "headers", "reason", "status", "whole")

    def __init__(
        self,
        status: int,
        reason: str | None,
        headers: CIMultiDictProxy[str] | CIMultiDict[str],
        body: AsyncIterator[bytes],
        raw: aiohttp.ClientResponse | None = None,
        end_to_end: bool = False,
        whole: bytes | None = None,
    ) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self._raw = raw
        self.end_to_end = end_to_end
        """True when `headers` is a fresh mutable copy without connection-specific fields."""
        self.whole = whole
        """The whole body when it arrived with the head (then `body` yields just that)."""


class UpstreamClient(Protocol):
    """Sends requests to the backends of one pool over pooled keep-alive connections."""

    async def send(
        self,
        backend: Backend,
        method: str,
        target: str,
        headers: CIMultiDict[str],
        body: bytes | AsyncIterator[bytes] | None,
        timeouts: Timeouts,
    ) -> UpstreamResponse:
        """Send one request and return once the response head has arrived."""
        ...

    async def close(self) -> None:
        """Close every pooled connection."""
        ...


_SKIP_AUTO = frozenset({"User-Agent", "Accept-Encoding", "Accept", "Content-Type"})


class AiohttpUpstreamClient:
    """UpstreamClient on aiohttp's ClientSession (one session and connector per pool)."""

    def __init__(
        self,
        config: UpstreamConfig,
        resolver_config: ResolverConfig,
        ssl_context: ssl.SSLContext | None,
        server_name: str | None = None,
    ) -> None:
        self._config = config
        self._resolver_config = resolver_config
        self._ssl = ssl_context
        self._server_name = server_name
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[int, aiohttp.ClientTimeout] = {}

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=0,
            limit_per_host=self._config.max_connections,
            keepalive_timeout=self._config.keepalive_timeout,
            resolver=TTLResolver(self._resolver_config, self._config.dns_ttl),
            use_dns_cache=False,
            ssl=self._ssl if self._ssl is not None else True,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=_SKIP_AUTO,
            timeout=aiohttp.ClientTimeout(total=None),
            trust_env=False,
        )
        return self._session

    def _timeout(self, timeouts: Timeouts) -> aiohttp.ClientTimeout:
        key = id(timeouts)
        cached = self._timeouts.get(key)
        if cached is None:
            cached = aiohttp.ClientTimeout(
                total=None,
                connect=timeouts.connect,
                sock_connect=timeouts.connect,
                sock_read=timeouts.read,
            )
            self._timeouts[key] = cached
        return cached

    async def send(
        self,
        backend: Backend,
        method: str,
        target: str,
        headers: CIMultiDict[str],
        body: bytes | AsyncIterator[bytes] | None,
        timeouts: Timeouts,
    ) -> UpstreamResponse:
        """Send one request and return once the response head has arrived."""
        session = self._session or self._open()
        url = URL(backend.url + target, encoded=True)
        try:
            request = session.request(
                method,
                url,
                headers=headers,
                data=body,
                allow_redirects=False,
                timeout=self._timeout(timeouts),
                server_hostname=self._server_name,
            )
            if timeouts.total is None:
                resp = await request
            else:
                async with asyncio.timeout(timeouts.total):
                    resp = await request
        except aiohttp.ConnectionTimeoutError as exc:
            raise UpstreamError(
                "connect_timeout", f"connecting to {backend.name} timed out", sent=False
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamError(
                "connect", f"cannot connect to {backend.name}: {_reason(exc)}", sent=False
            ) from exc
        except (TimeoutError, aiohttp.SocketTimeoutError) as exc:
            raise UpstreamError(
                "timeout", f"{backend.name} did not answer in time", sent=True
            ) from exc
        except aiohttp.ClientResponseError as exc:
            raise UpstreamError(
                "protocol", f"invalid response from {backend.name}: {exc.message}", sent=True
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamError(
                "reset", f"{backend.name} closed the connection: {_reason(exc)}", sent=True
            ) from exc
        return UpstreamResponse(resp.status, resp.reason, resp.headers, _stream(resp), resp)

    def idle_connections(self) -> int:
        """Idle keep-alive connections held across every backend."""
        if self._session is None:
            return 0
        conns = self._session.connector._conns  # type: ignore[union-attr]
        return sum(len(c) for c in conns.values())

    async def close(self) -> None:
        """Close every pooled connection."""
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _stream(resp: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """Yield the body as it arrives; reuse the connection only if it was read to the end."""
    complete = False
    try:
        content = resp.content
        while True:
            chunk = await content.readany()
            if not chunk:
                break
            yield chunk
        complete = True
    finally:
        if complete:
            resp.release()
        else:
            resp.close()


def _reason(exc: BaseException) -> str:
    os_error = getattr(exc, "os_error", None)
    if isinstance(os_error, OSError) and os_error.strerror:
        return os_error.strerror
    return str(exc) or type(exc).__name__
