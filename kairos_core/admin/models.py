"""The admin API's JSON shapes, shared by the server, the client SDK and the CLI."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ErrorBody(_Model):
    """What every admin error answers with."""

    status: int
    type: str
    message: str


class WorkerProcess(_Model):
    """One worker process of a multi-worker gateway."""

    id: int
    pid: int | None
    alive: bool
    restarts: int = 0


class Health(_Model):
    """Whether the gateway is up."""

    status: str = Field(description="`ok`, or `degraded` when a worker is down.")
    version: str
    workers: int = 1
    workers_alive: int | None = None
    routes: int | None = None
    uptime_seconds: float | None = None
    worker_processes: list[WorkerProcess] = Field(default_factory=list)


class Readiness(_Model):
    """Whether the gateway should receive traffic."""

    ready: bool
    checks: dict[str, bool] = Field(default_factory=dict)


class ChainLinkInfo(_Model):
    """One stage of a route's chain."""

    name: str
    phase: str
    priority: int
    scope: str


class RouteInfo(_Model):
    """A route with its match rules and plugin chain."""

    name: str
    path: str | None = None
    prefix: str | None = None
    methods: list[str] | None = None
    hosts: list[str] = Field(default_factory=list)
    headers: dict[str, str] = Field(default_factory=dict)
    priority: int = 0
    upstream: str
    rewrite: str | None = None
    strip_prefix: bool = False
    chain: list[ChainLinkInfo] = Field(default_factory=list)
    consumer_chains: dict[str, list[ChainLinkInfo]] = Field(default_factory=dict)


class BackendInfo(_Model):
    """A backend and its live state."""

    name: str
    url: str
    weight: int
    state: str = Field(description="`up`, `down`, `ejected` or `circuit_open`.")
    healthy: bool
    available: bool
    circuit: str | None = Field(
        None, description="`closed`, `half_open` or `open` (None: no breaker)."
    )
    in_flight: int


class UpstreamInfo(_Model):
    """An upstream pool."""

    name: str
    balancer: str
    panic_mode: bool = False
    health_checks: bool = False
    backends: list[BackendInfo] = Field(default_factory=list)


class PluginInfo(_Model):
    """An installed plugin entry point."""

    name: str
    distribution: str | None = None
    version: str | None = None
    enabled: bool = False


class Problem(_Model):
    """One thing wrong with a candidate configuration."""

    loc: str
    message: str
    line: int | None = None


class ValidationResult(_Model):
    """The verdict on a candidate configuration."""

    valid: bool
    problems: list[Problem] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


class ReloadResult(_Model):
    """What a reload did."""

    ok: bool
    error: str | None = None
    workers: int | None = None
