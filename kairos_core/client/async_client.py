"""`AsyncAdminClient`: the admin API over aiohttp, answers parsed into the server's own models."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any, TypeVar

import aiohttp
import orjson
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, TypeAdapter, ValidationError

from kairos_core.admin.models import (
    Health,
    PluginInfo,
    Readiness,
    ReloadResult,
    RouteInfo,
    UpstreamInfo,
    ValidationResult,
)
from kairos_core.client.errors import (
    AdminError,
    InvalidResponse,
    Unreachable,
    error_from_response,
)
from kairos_core.client.summary import MetricsSummary, summarize

DEFAULT_URL = "http://127.0.0.1:9901"
DEFAULT_TIMEOUT = 10.0

Model = TypeVar("Model", bound=BaseModel)
T = TypeVar("T")
_ROUTES = TypeAdapter(list[RouteInfo])
_UPSTREAMS = TypeAdapter(list[UpstreamInfo])
_PLUGINS = TypeAdapter(list[PluginInfo])


def normalize_url(url: str) -> str:
    """`host:port` or a full URL, without a trailing slash (`http://` when no scheme is given)."""
    url = url.strip().rstrip("/")
    return url if "://" in url else f"http://{url}"


class Answer:
    """One admin API response: status, text and (when it is JSON) the decoded body."""

    __slots__ = ("body", "status", "text", "url")

    def __init__(self, status: int, text: str, body: Any, url: str) -> None:
        self.status = status
        self.text = text
        self.body = body
        self.url = url


class AsyncAdminClient:
    """Talks to a running gateway's admin API; use `async with` or call `close()`."""

    def __init__(
        self, url: str = DEFAULT_URL, token: str | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.url = normalize_url(url)
        self.token = token or None
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AsyncAdminClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                headers=self._headers(),
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    def _unreachable(self, exc: BaseException) -> Unreachable:
        if isinstance(exc, TimeoutError):
            reason = f"no answer within {self.timeout:g}s"
        elif isinstance(exc, aiohttp.ClientConnectorError):
            os_error = exc.os_error
            reason = (
                "connection refused"
                if isinstance(os_error, ConnectionRefusedError)
                else os_error.strerror or str(os_error)
            )
        else:
            reason = str(exc) or type(exc).__name__
        return Unreachable(f"cannot reach the Kairos admin API at {self.url}: {reason}", self.url)

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: str | bytes | None = None,
        accept: Iterable[int] = (200,),
    ) -> Answer:
        """Send one request; raise the server's error unless the status is in `accept`."""
        url = self.url + (path if path.startswith("/") else f"/{path}")
        try:
            async with self._http().request(method, url, json=json, data=data) as response:
                text = await response.text()
                status = response.status
                is_json = response.content_type == "application/json"
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._unreachable(exc) from None
        body: Any = None
        if is_json:
            try:
                body = orjson.loads(text) if text else None
            except orjson.JSONDecodeError:
                body = None
        if status not in set(accept):
            raise error_from_response(status, body, text, url)
        return Answer(status, text, body, url)

    async def request(self, method: str, path: str, json: Any = None) -> Any:
        """Call any endpoint (e.g. a plugin's `POST /cache/purge`); its JSON, or its text."""
        answer = await self.call(method.upper(), path, json=json, accept=range(200, 300))
        return answer.body if answer.body is not None else answer.text

    @staticmethod
    def _model(model: type[Model], answer: Answer) -> Model:
        try:
            return model.model_validate(answer.body)
        except ValidationError as exc:
            raise _invalid(answer, exc) from None

    async def health(self) -> Health:
        """`GET /health`: `status` is `ok`, or `degraded` when a worker is down (not an error)."""
        return self._model(Health, await self.call("GET", "/health", accept=(200, 503)))

    async def ready(self) -> Readiness:
        """`GET /ready`: whether the gateway should receive traffic, with each check."""
        return self._model(Readiness, await self.call("GET", "/ready", accept=(200, 503)))

    async def live(self) -> dict[str, Any]:
        """`GET /live`: `{"status": "ok", "version": ...}` while the admin listener answers."""
        answer = await self.call("GET", "/live")
        if not isinstance(answer.body, dict):
            raise _invalid(answer, "expected a JSON object")
        return answer.body

    async def metrics_text(self) -> str:
        """`GET /metrics`: the Prometheus text exposition, merged across workers."""
        return (await self.call("GET", "/metrics")).text

    async def metrics(self) -> dict[str, Metric]:
        """The exposition parsed into metric families, by family name (`kairos_requests`, ...)."""
        text = await self.metrics_text()
        try:
            return {family.name: family for family in text_string_to_metric_families(text)}
        except ValueError as exc:
            raise InvalidResponse(
                200, "invalid_metrics", f"unreadable exposition: {exc}", self.url + "/metrics"
            ) from None

    async def metrics_summary(self) -> MetricsSummary:
        """Per route requests, error rate and latency percentiles; in-flight; backends."""
        return summarize(await self.metrics())

    async def routes(self) -> list[RouteInfo]:
        """`GET /routes`: every route with its match rules and plugin chain."""
        answer = await self.call("GET", "/routes")
        return _adapt(_ROUTES, answer)

    async def upstreams(self) -> list[UpstreamInfo]:
        """`GET /upstreams`: every pool with its backends' health, circuit and in-flight."""
        answer = await self.call("GET", "/upstreams")
        return _adapt(_UPSTREAMS, answer)

    async def config(self) -> dict[str, Any]:
        """`GET /config`: the running configuration, every secret redacted."""
        answer = await self.call("GET", "/config")
        if not isinstance(answer.body, dict):
            raise _invalid(answer, "expected a JSON object")
        return answer.body

    async def plugins(self) -> list[PluginInfo]:
        """`GET /plugins`: installed plugins and whether the configuration enables them."""
        answer = await self.call("GET", "/plugins")
        return _adapt(_PLUGINS, answer)

    async def validate(self, text: str) -> ValidationResult:
        """`POST /config/validate`: check a candidate config (YAML or JSON) with the gateway's plugins."""
        answer = await self.call("POST", "/config/validate", data=text.encode())
        return self._model(ValidationResult, answer)

    async def reload(self) -> ReloadResult:
        """`POST /config/reload` in every worker; raises `ReloadFailed` when the file is refused."""
        return self._model(ReloadResult, await self.call("POST", "/config/reload"))

    async def openapi(self) -> dict[str, Any]:
        """`GET /openapi.json`: the admin API's OpenAPI document, plugin routes included."""
        answer = await self.call("GET", "/openapi.json")
        if not isinstance(answer.body, dict):
            raise _invalid(answer, "expected a JSON object")
        return answer.body

    async def stream(
        self, interval: float = 1.0, routes: Iterable[str] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Live metrics over `WS /stream`: a `snapshot` message, then an `update` per interval.

        Iteration ends when the gateway closes the stream (it is shutting down).
        """
        params = {"interval": f"{interval:g}"}
        if routes is not None:
            params["routes"] = ",".join(routes)
        url = self.url + "/stream"
        try:
            socket = await self._http().ws_connect(
                url, params=params, timeout=aiohttp.ClientWSTimeout(ws_close=self.timeout)
            )
        except aiohttp.WSServerHandshakeError as exc:
            raise await self._handshake_error(exc, url, params) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._unreachable(exc) from None
        async with socket:
            async for message in socket:
                if message.type == aiohttp.WSMsgType.TEXT:
                    yield message.json()
                elif message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    break

    async def _handshake_error(
        self, exc: aiohttp.WSServerHandshakeError, url: str, params: dict[str, str]
    ) -> AdminError:
        """The server's JSON error for a refused WebSocket: asked again as a plain GET."""
        try:
            async with self._http().get(url, params=params) as response:
                text = await response.text()
                body = (
                    await response.json() if response.content_type == "application/json" else None
                )
        except (aiohttp.ClientError, TimeoutError, ValueError):
            text, body = exc.message, None
        return error_from_response(exc.status, body, text, url)


def _adapt(adapter: TypeAdapter[T], answer: Answer) -> T:
    try:
        return adapter.validate_python(answer.body)
    except ValidationError as exc:
        raise _invalid(answer, exc) from None


def _invalid(answer: Answer, problem: object) -> InvalidResponse:
    return InvalidResponse(
        answer.status, "invalid_response", f"unexpected answer: {problem}", answer.url, answer.body
    )
