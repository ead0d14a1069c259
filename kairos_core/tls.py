"""SSL contexts: listeners (several certificates chosen by SNI, optional mTLS) and upstreams."""

from __future__ import annotations

import ssl
from pathlib import Path

from kairos_core.config.models import ListenerTLS, UpstreamTLS


class TLSConfigError(ValueError):
    """A certificate, key or CA file cannot be used."""


class ServerTLS:
    """A listener's SSL context; a reload swaps in new certificates without rebinding the socket.

    `context` is given to the server once. Its SNI callback hands every handshake to the
    current certificate set (the first certificate by default, others by server name), so
    replacing that set affects every new connection and none already open.
    """

    def __init__(self, config: ListenerTLS) -> None:
        contexts = self.build(config)
        self.context = contexts[0]
        self._default = contexts[0]
        self._exact: dict[str, ssl.SSLContext] = {}
        self._wildcard: dict[str, ssl.SSLContext] = {}
        self.install(config, contexts)
        self.context.sni_callback = self._choose

    @staticmethod
    def build(config: ListenerTLS) -> list[ssl.SSLContext]:
        """Load every certificate of `config` (raises TLSConfigError); nothing changes yet."""
        return [_server_context(config, cert.cert, cert.key) for cert in config.certificates]

    def install(self, config: ListenerTLS, contexts: list[ssl.SSLContext]) -> None:
        """Serve `contexts` (from `build(config)`) to every new connection."""
        self.context.minimum_version = _minimum_version(config)
        self.context.verify_mode = _verify_mode(config)
        exact: dict[str, ssl.SSLContext] = {}
        wildcard: dict[str, ssl.SSLContext] = {}
        for cert, ctx in zip(config.certificates, contexts, strict=True):
            for name in cert.server_names:
                name = name.lower()
                if name.startswith("*."):
                    wildcard.setdefault(name[2:], ctx)
                else:
                    exact.setdefault(name, ctx)
        self._default, self._exact, self._wildcard = contexts[0], exact, wildcard

    def _choose(self, sock: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        chosen = None
        if server_name:
            name = server_name.lower()
            chosen = self._exact.get(name)
            if chosen is None and "." in name:
                chosen = self._wildcard.get(name.split(".", 1)[1])
        sock.context = chosen or self._default


def _minimum_version(config: ListenerTLS) -> ssl.TLSVersion:
    return ssl.TLSVersion.TLSv1_3 if config.min_version == "TLSv1.3" else ssl.TLSVersion.TLSv1_2


def _verify_mode(config: ListenerTLS) -> ssl.VerifyMode:
    if config.client_cert == "none":
        return ssl.CERT_NONE
    return ssl.CERT_REQUIRED if config.client_cert == "required" else ssl.CERT_OPTIONAL


def _server_context(config: ListenerTLS, cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _minimum_version(config)
    ctx.set_alpn_protocols(["http/1.1"])
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise TLSConfigError(f"cannot load certificate {cert} / key {key}: {_why(exc)}") from None
    if config.client_cert != "none":
        assert config.client_ca is not None
        try:
            ctx.load_verify_locations(cafile=config.client_ca)
        except (OSError, ssl.SSLError) as exc:
            raise TLSConfigError(f"cannot load client CA {config.client_ca}: {_why(exc)}") from None
        ctx.verify_mode = _verify_mode(config)
    return ctx


def upstream_context(config: UpstreamTLS) -> ssl.SSLContext:
    """A client context for HTTPS backends; verification is on unless turned off."""
    ctx = ssl.create_default_context(cafile=None)
    if config.ca_bundle:
        if not Path(config.ca_bundle).is_file():
            raise TLSConfigError(f"CA bundle {config.ca_bundle} does not exist")
        try:
            ctx.load_verify_locations(cafile=config.ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise TLSConfigError(f"cannot load CA bundle {config.ca_bundle}: {_why(exc)}") from None
    if not config.verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if config.client_cert:
        try:
            ctx.load_cert_chain(config.client_cert, config.client_key)
        except (OSError, ssl.SSLError) as exc:
            raise TLSConfigError(
                f"cannot load client certificate {config.client_cert}: {_why(exc)}"
            ) from None
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)
