"""What plugins register: stage, authenticator, balancer and protocol declarations."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from kairos_core.context import Consumer, RequestContext
from kairos_core.metrics import Metrics
from kairos_core.response import Response

if TYPE_CHECKING:
    from aiohttp import web

    from kairos_core.config.models import GatewayConfig, ListenerConfig
    from kairos_core.upstream.pool import Backend, UpstreamPool

Handler = Callable[[RequestContext], Awaitable[Response]]
"""The rest of the chain: await it with the context to get the response."""

Middleware = Callable[[RequestContext, Handler], Awaitable[Response]]
"""A stage: gets the context and the next handler; may answer itself or call the next one."""

C = TypeVar("C", bound=BaseModel)


class Phase(IntEnum):
    """Where a stage sits in the chain, outermost first; the core proxies after the last one."""

    LOG = 10
    PRE_AUTH = 20
    AUTH = 30
    TRAFFIC = 40
    CACHE = 50
    TRANSFORM = 60


class NoConfig(BaseModel):
    """The config model of plugins that take no settings."""

    model_config = ConfigDict(extra="forbid")


Scope = Literal["global", "route", "consumer"]


@dataclass(frozen=True, slots=True)
class BuildContext:
    """What a plugin's `build` gets besides its config: where it runs and the gateway's services."""

    scope: Scope
    route_name: str | None
    consumer_name: str | None
    services: GatewayServices


Command = Callable[[dict[str, Any]], Awaitable[Any]]
"""A worker-side action an admin endpoint can broadcast (e.g. a cache purge)."""


@dataclass(slots=True)
class GatewayServices:
    """Gateway-wide facilities shared by every plugin instance of one configuration."""

    config: GatewayConfig
    consumers: Mapping[str, Consumer]
    pools: Mapping[str, UpstreamPool]
    worker_id: int = 0
    workers: int = 1
    instance_id: str = ""
    """Identifies one running gateway (the same in all its workers, new on each start)."""
    metrics: Metrics = field(default_factory=Metrics)
    """The process's metrics; resolve labelled children at build time, not per request."""
    commands: dict[str, Command] = field(default_factory=dict)
    """Named actions admin endpoints reach in every worker through `ControlPlane.broadcast`."""
    shared: dict[str, Any] = field(default_factory=dict)
    """Resources plugins share across routes (for example one Redis pool); keyed by plugin."""


@dataclass(frozen=True, slots=True)
class StagePlugin(Generic[C]):
    """A plugin that runs in the request chain (rate limiter, cache, transformer, filter...)."""

    name: str
    build: Callable[[C, BuildContext], Middleware]
    config_model: type[C] = NoConfig  # type: ignore[assignment]
    phase: Phase | None = None
    """Defaults to the phase of the hook it is registered through."""
    priority: int = 0
    """Higher runs earlier (further out) within the phase."""
    description: str = ""


class AuthFailure(Exception):
    """Raised by an authenticator: credentials were present but are not acceptable."""

    def __init__(
        self,
        message: str,
        status: int = 401,
        challenge: str | None = None,
        error_type: str = "unauthorized",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.challenge = challenge
        self.error_type = error_type


class AuthDeferred(Exception):
    """Raised by `authenticate_now` when this request needs the awaiting `authenticate`."""


class Authenticator(Protocol):
    """Checks one kind of credential; built once per route (and consumer scope) at load."""

    challenge: str
    """The `WWW-Authenticate` value sent when no credential is given (e.g. `Bearer`)."""

    # Optional: `gateway_headers: tuple[str, ...]`, headers this method sets for the backend
    # (forwarded claims, certificate subject). The core removes them from every request on the
    # route before any method runs, so a client cannot pass them in while another method
    # (which never touches them) accepts its credential.

    # Optional: `def authenticate_now(self, ctx) -> Consumer | None`, the same check without
    # awaiting (a cache hit, a table lookup). It raises AuthFailure like `authenticate`, or
    # AuthDeferred when it would have to wait (fetch keys, ask a server); the core then awaits
    # `authenticate` for that request. When every method of a route has it, authentication
    # creates no coroutine and the authentication stage leaves the await chain.

    async def authenticate(self, ctx: RequestContext) -> Consumer | None:
        """Return the consumer, None when no credential of this kind is present, or raise."""
        ...


@dataclass(frozen=True, slots=True)
class AuthPlugin(Generic[C]):
    """An authentication method; a route lists several to accept any of them."""

    name: str
    build: Callable[[C, BuildContext], Authenticator]
    config_model: type[C] = NoConfig  # type: ignore[assignment]
    priority: int = 0
    description: str = ""


class Balancer(Protocol):
    """Chooses a backend among the available ones; must be cheap (it runs per request).

    A balancer may also define `observe(backend, seconds, ok)`: the core then calls it after
    each upstream attempt with the time to the response head and whether it succeeded (no
    connection error, status below 500), for latency-aware strategies.
    """

    def pick(self, ctx: RequestContext | None, candidates: Sequence[Backend]) -> Backend | None:
        """The chosen backend, or None to let the pool report that none is available."""
        ...


class AsyncBalancer(Balancer, Protocol):
    """A balancer that must await something (a model, a lookup) to decide.

    The proxy awaits `pick_async` instead of calling `pick`; a None result or an unavailable
    backend falls back to `pick` (which must therefore be a cheap, always-working strategy).
    """

    async def pick_async(
        self, ctx: RequestContext | None, candidates: Sequence[Backend]
    ) -> Backend | None:
        """The chosen backend, or None to fall back to `pick`."""
        ...


@dataclass(frozen=True, slots=True)
class BalancerPlugin(Generic[C]):
    """A balancing strategy, selected per upstream pool with `balancer:`."""

    name: str
    build: Callable[[C, UpstreamPool], Balancer]
    config_model: type[C] = NoConfig  # type: ignore[assignment]
    description: str = ""


class RunningService(Protocol):
    """A started protocol listener; closed on shutdown or when a reload replaces it."""

    async def close(self) -> None:
        """Stop accepting, finish or drop open sessions, release sockets."""
        ...


@dataclass(frozen=True, slots=True)
class ProtocolPlugin(Generic[C]):
    """A listener for a protocol other than HTTP (FTP, DNS, ...), configured in `listeners`."""

    name: str
    start: Callable[[ListenerConfig, C, GatewayServices], Awaitable[RunningService]]
    config_model: type[C] = NoConfig  # type: ignore[assignment]
    every_worker: bool = False
    """Run in every worker process (needs SO_REUSEPORT-safe sockets); else in worker 0 only."""
    description: str = ""
    prepare: Callable[[ListenerConfig, C, GatewayServices], None] | None = None
    """Called when the configuration is built (also by `kairos validate`), in every worker and
    before anything starts: check the settings against `services` (pools) and prepare shared
    objects, without I/O; a ValueError is reported against the listener's `config`."""


AdminHandler = Callable[["web.Request"], Awaitable["web.StreamResponse"]]


@dataclass(frozen=True, slots=True)
class AdminRoute:
    """An endpoint a plugin adds to the admin listener."""

    method: str
    path: str
    handler: AdminHandler
    public: bool = False
    """Serve without the admin token (static assets only; never data)."""
    name: str = ""
    body: type[BaseModel] | None = None
    """The JSON body the endpoint takes: described in the OpenAPI document; read it in the
    handler with `read_json_body(request, model)` (a 400 naming the field when it is wrong)."""
