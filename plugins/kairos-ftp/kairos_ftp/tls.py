"""TLS contexts: the gateway's FTPS certificate, and the client side towards `ftps://` backends."""

from __future__ import annotations

import ssl

from kairos_core import UpstreamPool
from kairos_ftp.settings import GatewayTLS

_BACKEND_CONTEXT = "kairos_ftp.backend_tls"
"""The pool's `plugin_state` key for its FTPS client context (a reload's new pool builds anew)."""


class TLSSetupError(OSError):
    """A certificate or key could not be loaded (an OSError, so the gateway names the listener)."""


def gateway_context(config: GatewayTLS) -> ssl.SSLContext:
    """The server context presented to clients after `AUTH TLS`."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = (
        ssl.TLSVersion.TLSv1_3 if config.min_version == "TLSv1.3" else ssl.TLSVersion.TLSv1_2
    )
    try:
        context.load_cert_chain(config.cert, config.key)
    except (OSError, ssl.SSLError) as exc:
        raise TLSSetupError(
            f"config.tls: cannot load certificate {config.cert!r} / key {config.key!r}: {exc}"
        ) from None
    return context


def backend_context(pool: UpstreamPool) -> ssl.SSLContext:
    """The client context for `ftps://` backends of `pool`, from the pool's `tls:` settings."""
    cached: ssl.SSLContext | None = pool.plugin_state.get(_BACKEND_CONTEXT)
    if cached is not None:
        return cached
    settings = pool.config.tls
    try:
        context = ssl.create_default_context(cafile=settings.ca_bundle)
        if not settings.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if settings.client_cert:
            context.load_cert_chain(settings.client_cert, settings.client_key)
    except (OSError, ssl.SSLError) as exc:
        raise TLSSetupError(f"upstreams.{pool.name}.tls: {exc}") from None
    pool.plugin_state[_BACKEND_CONTEXT] = context
    return context


def backend_server_name(pool: UpstreamPool, host: str) -> str:
    """The name a backend's certificate is checked against (and sent as SNI)."""
    return pool.config.tls.server_name or host
