"""The configuration schema: pydantic models for every section of a Kairos config file."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ByteSize,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from kairos_core.config.observability import ObservabilityConfig
from kairos_core.config.resilience import (
    CircuitBreakerConfig,
    HealthCheckConfig,
    MirrorConfig,
    RetryConfig,
    SplitRule,
)

HTTP_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
_HOST_RE = re.compile(
    r"^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$"
)

Seconds = Annotated[float, Field(gt=0)]
BACKEND_SCHEMES = ("http", "https", "ws", "wss", "ftp", "ftps", "dns", "tcp")
Port = Annotated[int, Field(ge=0, le=65535)]


class StrictModel(BaseModel):
    """Base for every config model: unknown fields are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_name(value: str) -> str:
    if not _NAME_RE.match(value):
        raise ValueError(
            "must start with a letter or digit and contain only letters, digits, '_', '.', ':' or '-'"
        )
    return value


class PluginEntry(StrictModel):
    """One plugin enabled at a scope (global, route or consumer) with its settings."""

    name: str = Field(description="Plugin name as registered (e.g. `headers`, `jwt`).")
    config: dict[str, Any] = Field(
        default_factory=dict, description="Settings validated by the plugin's own model."
    )
    enabled: bool = Field(
        True, description="`false` on a route disables a globally enabled plugin there."
    )
    priority: int | None = Field(
        None, description="Overrides the plugin's default priority within its phase."
    )


class PluginRef(StrictModel):
    """A named component (such as a balancer) and its settings."""

    name: str = Field(description="Registered component name (for a balancer: `round_robin`, ...).")
    config: dict[str, Any] = Field(
        default_factory=dict, description="Settings validated by the component's own model."
    )

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value


class CertificateConfig(StrictModel):
    """A certificate chain and key served for some TLS server names."""

    cert: str = Field(description="Path to a PEM certificate chain.")
    key: str = Field(description="Path to the PEM private key.")
    server_names: list[str] = Field(
        default_factory=list,
        description="SNI names served with this certificate (`*.example.com` allowed); "
        "the first certificate is also the default.",
    )


class ListenerTLS(StrictModel):
    """TLS termination on a listener."""

    certificates: list[CertificateConfig] = Field(
        min_length=1, description="Certificates served, chosen by SNI; the first is the default."
    )
    client_ca: str | None = Field(
        None, description="CA bundle used to verify client certificates (mTLS)."
    )
    client_cert: Literal["none", "optional", "required"] = Field(
        "none", description="Whether clients are asked for a certificate."
    )
    min_version: Literal["TLSv1.2", "TLSv1.3"] = Field(
        "TLSv1.2", description="Oldest TLS version accepted from clients."
    )

    @model_validator(mode="after")
    def _client_ca_needed(self) -> ListenerTLS:
        if self.client_cert != "none" and not self.client_ca:
            raise ValueError("client_cert requires client_ca")
        return self


class ListenerConfig(StrictModel):
    """An address the gateway listens on; `protocol` picks the handler (http or a plugin's)."""

    name: str | None = Field(None, description="Label shown in logs.")
    protocol: str = Field("http", description="`http` (core) or a protocol handler plugin name.")
    host: str = Field("127.0.0.1", description="Bind address; `0.0.0.0` or `::` for all.")
    port: Port = Field(8080, description="TCP port; 0 picks a free one.")
    tls: ListenerTLS | None = Field(None, description="Terminate TLS on this listener.")
    redirect_to_https: str | None = Field(
        None,
        description="Answer every request with a 308 redirect to this HTTPS origin "
        "(for example `https://example.com:8443`).",
    )
    proxy_protocol: bool = Field(
        False, description="Expect a PROXY protocol v1/v2 header on each connection."
    )
    config: dict[str, Any] = Field(
        default_factory=dict, description="Settings for a plugin protocol handler."
    )


class AdminConfig(StrictModel):
    """The admin API listener."""

    enabled: bool = Field(True, description="Serve the admin API.")
    host: str = Field("127.0.0.1", description="Bind address; loopback unless a token is set.")
    port: Port = Field(9901, description="TCP port of the admin API.")
    token: SecretStr | None = Field(
        None, description="Bearer token; required whenever the listener is not loopback-only."
    )
    require_token: bool = Field(False, description="Require the token on loopback too.")
    plugins: list[str] = Field(
        default_factory=list,
        description="Plugins loaded only for the endpoints they add here (e.g. `dashboard`).",
    )

    @model_validator(mode="after")
    def _token_when_exposed(self) -> AdminConfig:
        if self.enabled and not _is_loopback(self.host) and not self.token:
            raise ValueError(
                f"admin listens on non-loopback address {self.host!r}: set admin.token"
            )
        if self.require_token and not self.token:
            raise ValueError("require_token is set but admin.token is empty")
        return self


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class CompressionConfig(StrictModel):
    """Gzip response compression, negotiated by `Accept-Encoding`."""

    enabled: bool = Field(False, description="Compress responses (routes may override).")
    min_size: int = Field(1024, ge=0, description="Smaller bodies (known length) are sent as is.")
    level: int = Field(5, ge=1, le=9, description="Gzip level: 1 is fastest, 9 compresses most.")
    content_types: list[str] = Field(
        default_factory=lambda: [
            "text/",
            "application/json",
            "application/javascript",
            "application/xml",
            "image/svg+xml",
        ],
        description="Prefixes of compressible content types.",
    )


class ServerConfig(StrictModel):
    """Gateway-wide HTTP settings."""

    trusted_proxies: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = Field(
        default_factory=list,
        description="Networks whose X-Forwarded-*/Forwarded headers are believed.",
    )
    max_body_size: ByteSize = Field(
        ByteSize(100 * 1024 * 1024), description="Largest request body; larger gets 413."
    )
    max_header_size: int = Field(
        8190, ge=256, description="Longest request line or header field; longer gets 431/414."
    )
    max_headers: int = Field(100, ge=1, description="Most header fields; more gets 431.")
    keepalive_timeout: Seconds = Field(75.0, description="Idle keep-alive connection timeout.")
    header_timeout: Seconds = Field(
        10.0,
        description="Time a client gets to send a complete request head, counted from the "
        "connection's start or from the first byte of a later request on it; a slower client "
        "(slowloris) is disconnected.",
    )
    max_connections: int = Field(
        10_000,
        ge=1,
        description="Most client connections open at once per HTTP listener (and worker); "
        "beyond it a new connection is closed as soon as it is accepted.",
    )
    shutdown_timeout: Seconds = Field(
        30.0, description="Time in-flight requests get to finish on shutdown."
    )
    engine: Literal["lean", "aiohttp"] = Field(
        "lean",
        description="HTTP server front: `lean` (an asyncio protocol on httptools, handing "
        "chunked uploads, HTTP/1.0, upgrades and malformed requests to aiohttp) or `aiohttp` "
        "(aiohttp's server for every request).",
    )
    request_id_header: str = Field(
        "X-Request-ID", description="Header carrying the request id to the backend and client."
    )
    consumer_header: str | None = Field(
        "X-Consumer",
        description="Header carrying the authenticated consumer's name upstream (a client-sent "
        "one is always removed); null to send none.",
    )
    server_header: str = Field(
        "kairos", description="`Server` header of responses whose backend sent none."
    )
    compression: CompressionConfig = Field(
        default_factory=CompressionConfig, description="Gzip compression of responses."
    )


class UpstreamTLS(StrictModel):
    """TLS settings for HTTPS backends."""

    verify: bool = Field(True, description="Verify the backend certificate.")
    ca_bundle: str | None = Field(None, description="PEM file of trusted CAs.")
    server_name: str | None = Field(None, description="SNI and verification name override.")
    client_cert: str | None = Field(None, description="PEM client certificate for mTLS.")
    client_key: str | None = Field(None, description="PEM private key of `client_cert`.")


class BackendConfig(StrictModel):
    """One backend server of an upstream pool."""

    url: str = Field(
        description="`http://host:port` or `https://host:port`, no path; protocol listeners "
        "use `ftp://`, `ftps://`, `dns://` or `tcp://` backends."
    )
    weight: int = Field(1, ge=0, description="Relative share for weighted balancers.")
    name: str | None = Field(None, description="Label for metrics; defaults to host:port.")

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in BACKEND_SCHEMES:
            raise ValueError(
                "expected a URL starting with http:// or https:// (or, for protocol "
                "listeners, ftp://, ftps://, dns:// or tcp://)"
            )
        if parts.scheme == "tcp" and parts.port is None:
            raise ValueError("a tcp:// backend needs a port")
        if not parts.hostname:
            raise ValueError("URL has no host")
        try:
            _ = parts.port
        except ValueError as exc:
            raise ValueError(f"invalid port: {exc}") from None
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("a backend URL is an origin only: put paths in the route's rewrite")
        return value.rstrip("/")


class UpstreamConfig(StrictModel):
    """A pool of backends with its balancing, connection and TLS settings."""

    backends: list[BackendConfig] = Field(min_length=1, description="The servers of this pool.")
    balancer: PluginRef = Field(
        default_factory=lambda: PluginRef(name="round_robin"),
        description="Balancer plugin name, or `{name, config}`.",
    )
    tls: UpstreamTLS = Field(
        default_factory=UpstreamTLS, description="TLS settings for `https://` backends."
    )
    max_connections: int = Field(
        0, ge=0, description="Open connections per backend (0 = unlimited); excess requests queue."
    )
    keepalive_timeout: Seconds = Field(
        60.0, description="Idle upstream connections close after this."
    )
    dns_ttl: Seconds | None = Field(
        None,
        description="Fixed DNS cache lifetime for backend host names; by default the "
        "answer's own TTL is honoured.",
    )
    client: Literal["lean", "aiohttp"] = Field(
        "lean",
        description="Connection layer to the backends: `lean` (pooled HTTP/1.1 on asyncio "
        "protocols and httptools, about half the CPU per request) or `aiohttp` (aiohttp's "
        "ClientSession, kept as a fallback). Both honour every option of this section.",
    )
    health_check: HealthCheckConfig = Field(
        default_factory=HealthCheckConfig, description="Active and passive health checks."
    )
    circuit_breaker: CircuitBreakerConfig = Field(
        default_factory=CircuitBreakerConfig, description="A circuit breaker per backend."
    )
    panic_mode: bool = Field(
        False, description="When no backend is healthy, spread requests over all of them."
    )


class Timeouts(StrictModel):
    """Upstream timeouts of a route (seconds)."""

    connect: Seconds = Field(5.0, description="Connecting (TCP and TLS) to a backend.")
    total: Seconds | None = Field(
        None,
        description="Deadline from sending the request until the response head arrives; "
        "unset, that wait is bounded by `connect` + `read`.",
    )
    read: Seconds = Field(
        60.0,
        description="Longest silence while streaming a body either way (idle timeout); "
        "a long stream is not cut while data keeps flowing.",
    )


class WebSocketConfig(StrictModel):
    """WebSocket upgrades on a route."""

    enabled: bool = Field(True, description="Proxy `Upgrade: websocket` requests on this route.")
    max_message_size: ByteSize = Field(
        ByteSize(16 * 1024 * 1024),
        description="Largest message either way; larger closes with 1009.",
    )
    idle_timeout: Seconds = Field(
        300.0, description="Close (1001) after this long without any frame."
    )
    max_connections: int = Field(
        0,
        ge=0,
        description="Open connections allowed on the route per worker (0 = no limit); "
        "more are closed with 1013.",
    )
    compression: bool = Field(True, description="Negotiate permessage-deflate on each leg.")


class RouteConfig(StrictModel):
    """A route: what requests it matches, where they go, and which plugins run."""

    name: str | None = Field(None, description="Unique name; derived from the path if absent.")
    path: str | None = Field(
        None,
        description="Path pattern: static segments, `{param}`, and a final `{name:path}` "
        "catch-all.",
    )
    prefix: str | None = Field(
        None, description="Match this path and everything below it (segment boundary)."
    )
    methods: list[str] | None = Field(None, description="Allowed methods; all when absent.")
    hosts: list[str] = Field(
        default_factory=list, description="Host names (`api.example.com`, `*.example.com`)."
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="Headers that must be present with these exact values."
    )
    priority: int = Field(0, description="Higher wins over any lower-priority match.")
    upstream: str | UpstreamConfig = Field(
        description="Name of an upstream pool, or an inline pool."
    )
    rewrite: str | None = Field(
        None,
        description="Upstream path template; `{param}` substitutes path parameters.",
    )
    strip_prefix: bool = Field(False, description="Remove the matched prefix before proxying.")
    preserve_host: bool = Field(
        False, description="Send the client's Host header instead of the backend's."
    )
    host_header: str | None = Field(None, description="Fixed Host header sent upstream.")
    timeouts: Timeouts = Field(default_factory=Timeouts, description="Upstream timeouts.")
    max_body_size: ByteSize | None = Field(
        None, description="Overrides server.max_body_size on this route."
    )
    compression: bool | None = Field(None, description="Overrides server.compression.enabled.")
    retry: RetryConfig | None = Field(None, description="Retry failed attempts on other backends.")
    split: list[SplitRule] = Field(
        default_factory=list, description="Send matching or weighted shares to other pools."
    )
    mirror: MirrorConfig | None = Field(None, description="Copy requests to a shadow pool.")
    websocket: WebSocketConfig = Field(
        default_factory=WebSocketConfig, description="WebSocket upgrade handling."
    )
    plugins: list[PluginEntry] = Field(
        default_factory=list, description="Plugins for this route; they replace global entries."
    )

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str | None) -> str | None:
        return None if value is None else _check_name(value)

    @field_validator("methods")
    @classmethod
    def _valid_methods(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        upper = [m.upper() for m in value]
        unknown = sorted(set(upper) - HTTP_METHODS)
        if unknown:
            raise ValueError(f"unknown HTTP method(s): {', '.join(unknown)}")
        if not upper:
            raise ValueError("empty list: omit `methods` to allow every method")
        return upper

    @field_validator("hosts")
    @classmethod
    def _valid_hosts(cls, value: list[str]) -> list[str]:
        for host in value:
            if not _HOST_RE.match(host):
                raise ValueError(f"invalid host pattern {host!r}")
        return [h.lower() for h in value]

    @field_validator("path", "prefix")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError("must start with '/'")
        return value

    @model_validator(mode="after")
    def _path_or_prefix(self) -> RouteConfig:
        if (self.path is None) == (self.prefix is None):
            raise ValueError("set exactly one of `path` or `prefix`")
        if self.strip_prefix and self.prefix is None:
            raise ValueError("strip_prefix needs `prefix`")
        if self.strip_prefix and self.rewrite:
            raise ValueError("use either strip_prefix or rewrite, not both")
        if self.preserve_host and self.host_header:
            raise ValueError("use either preserve_host or host_header, not both")
        return self

    @property
    def display_name(self) -> str:
        """The route's name, or one derived from its path."""
        return self.name or derive_route_name(self.path or self.prefix or "/")


def derive_route_name(path: str) -> str:
    """Build a stable, metrics-safe route name from a path pattern."""
    cleaned = re.sub(r"[{}]", "", path).replace(":path", "").strip("/")
    cleaned = re.sub(r"[^A-Za-z0-9_.:-]+", "-", cleaned).strip("-")
    return cleaned or "root"


class ConsumerConfig(StrictModel):
    """An identity that authenticators map credentials to; may carry its own plugin config."""

    name: str = Field(description="Unique name, sent upstream in the consumer header.")
    metadata: dict[str, str] = Field(
        default_factory=dict, description="Free-form labels plugins may read."
    )
    plugins: list[PluginEntry] = Field(
        default_factory=list,
        description="Post-authentication plugin settings that replace route/global ones.",
    )

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return _check_name(value)


class ResolverConfig(StrictModel):
    """How backend host names are resolved."""

    nameservers: list[str] = Field(
        default_factory=list,
        description="`ip` or `ip:port` of DNS servers; the system resolver when empty.",
    )
    min_ttl: float = Field(1.0, ge=0, description="Answers are cached at least this long.")
    max_ttl: float = Field(300.0, gt=0, description="...and at most this long.")
    timeout: Seconds = Field(2.0, description="Time allowed for one lookup.")


class GatewayConfig(StrictModel):
    """A complete Kairos configuration file."""

    version: Literal[1] = Field(1, description="Version of the config format.")
    listeners: list[ListenerConfig] = Field(
        default_factory=lambda: [ListenerConfig()],
        min_length=1,
        description="Where traffic comes in.",
    )
    admin: AdminConfig = Field(default_factory=AdminConfig, description="The admin API listener.")
    observability: ObservabilityConfig = Field(
        default_factory=ObservabilityConfig, description="Metrics, access logs, logs and tracing."
    )
    server: ServerConfig = Field(
        default_factory=ServerConfig, description="Gateway-wide HTTP settings and limits."
    )
    resolver: ResolverConfig = Field(
        default_factory=ResolverConfig, description="DNS resolution of backend host names."
    )
    upstreams: dict[str, UpstreamConfig] = Field(
        default_factory=dict, description="Named backend pools that routes refer to."
    )
    routes: list[RouteConfig] = Field(
        default_factory=list, description="Which requests go where, with which plugins."
    )
    plugins: list[PluginEntry] = Field(
        default_factory=list, description="Plugins enabled for every route (and app-wide)."
    )
    consumers: list[ConsumerConfig] = Field(
        default_factory=list, description="Identities that authenticators map credentials to."
    )

    @model_validator(mode="after")
    def _cross_references(self) -> GatewayConfig:
        names: set[str] = set()
        for index, route in enumerate(self.routes):
            if isinstance(route.upstream, str) and route.upstream not in self.upstreams:
                raise _located(
                    ("routes", index, "upstream"),
                    f"unknown upstream {route.upstream!r}; defined: "
                    f"{', '.join(sorted(self.upstreams)) or 'none'}",
                )
            for s_index, rule in enumerate(route.split):
                if rule.upstream not in self.upstreams:
                    raise _located(
                        ("routes", index, "split", s_index, "upstream"),
                        f"unknown upstream {rule.upstream!r}",
                    )
            total = sum(rule.weight for rule in route.split if not (rule.header or rule.cookie))
            if total > 100:
                raise _located(("routes", index, "split"), f"weights add up to {total}% (> 100%)")
            if route.mirror is not None and route.mirror.upstream not in self.upstreams:
                raise _located(
                    ("routes", index, "mirror", "upstream"),
                    f"unknown upstream {route.mirror.upstream!r}",
                )
            name = route.display_name
            if name in names:
                raise _located(
                    ("routes", index, "name"),
                    f"duplicate route name {name!r}; give the route an explicit `name`",
                )
            names.add(name)
        seen: set[str] = set()
        for index, consumer in enumerate(self.consumers):
            if consumer.name in seen:
                raise _located(
                    ("consumers", index, "name"), f"duplicate consumer {consumer.name!r}"
                )
            seen.add(consumer.name)
        bound: set[tuple[str, int]] = set()
        for index, listener in enumerate(self.listeners):
            key = (listener.host, listener.port)
            if listener.port and key in bound:
                raise _located(("listeners", index, "port"), f"{key[0]}:{key[1]} is used twice")
            bound.add(key)
        return self


class LocatedError(ValueError):
    """A validation error raised at model level that names the exact field it concerns."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


def _located(loc: tuple[str | int, ...], message: str) -> LocatedError:
    return LocatedError(loc, message)
