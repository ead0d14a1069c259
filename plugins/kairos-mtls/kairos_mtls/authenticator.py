"""The `mtls` authenticator: the listener-verified client certificate names the consumer."""

from __future__ import annotations

import re
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kairos_core import AuthFailure, BuildContext, Consumer, RequestContext
from kairos_mtls.identity import CertificateFacts, IdentitySource, read_certificate

_HEADER_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
CACHE_ENTRIES = 4096
"""Certificates remembered (by DER bytes) so each is parsed once, not per request."""


def _default_identity() -> list[IdentitySource]:
    return ["subject_cn"]


class MtlsConfig(BaseModel):
    """Settings of the `mtls` authenticator."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    identity: list[IdentitySource] = Field(
        default_factory=_default_identity,
        min_length=1,
        description="Certificate fields naming the consumer, tried in order "
        "(subject_cn, san_dns, san_email, san_uri, san_ip, subject).",
    )
    consumers: dict[str, str] = Field(
        default_factory=dict,
        description="Certificate identity -> consumer name; identities not listed name themselves.",
    )
    require_configured_consumer: bool = Field(
        False, description="403 unless the certificate maps to a consumer under `consumers`."
    )
    forward_subject: str | None = Field(
        None, description="Upstream header receiving the certificate subject (RFC 4514)."
    )
    forward_fingerprint: str | None = Field(
        None, description="Upstream header receiving the certificate's SHA-256 fingerprint."
    )

    @model_validator(mode="after")
    def _headers(self) -> MtlsConfig:
        for header in (self.forward_subject, self.forward_fingerprint):
            if header is not None and not _HEADER_NAME_RE.match(header):
                raise ValueError(f"{header!r} is not a valid header name")
        return self


@dataclass(frozen=True, slots=True)
class CertificateVerdict:
    """What one certificate means for authentication: a consumer, or why not."""

    consumer: Consumer | None
    failure: str | None
    forwarded: tuple[tuple[str, str], ...]
    not_after: float


class MtlsAuthenticator:
    """Accepts requests whose TLS connection carries a client certificate that maps to a consumer."""

    challenge = ""
    """TLS client certificates have no HTTP challenge scheme."""

    def __init__(
        self,
        config: MtlsConfig,
        consumers: Mapping[str, Consumer],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._identity = tuple(config.identity)
        self._mapping = dict(config.consumers)
        self._consumers = consumers
        self._require = config.require_configured_consumer
        self._subject_header = config.forward_subject
        self._fingerprint_header = config.forward_fingerprint
        self.gateway_headers = tuple(
            h for h in (config.forward_subject, config.forward_fingerprint) if h is not None
        )
        """Removed from requests by the core before any authenticator runs."""
        self._clock = clock
        self._verdicts: dict[bytes, CertificateVerdict] = {}

    async def authenticate(self, ctx: RequestContext) -> Consumer | None:
        """The certificate's consumer; None without one; AuthFailure when it is not acceptable."""
        return self.authenticate_now(ctx)

    def authenticate_now(self, ctx: RequestContext) -> Consumer | None:
        """`authenticate` without awaiting (nothing here waits), so the core skips the coroutine."""
        headers = ctx.headers
        der = _peer_certificate(ctx)
        if der is None:
            return None
        verdict = self._verdicts.get(der)
        if verdict is None:
            verdict = self._judge(der)
            if len(self._verdicts) >= CACHE_ENTRIES:
                self._verdicts.pop(next(iter(self._verdicts)))
            self._verdicts[der] = verdict
        if self._clock() >= verdict.not_after:
            raise AuthFailure("client certificate expired", 401, None, "invalid_certificate")
        if verdict.consumer is None:
            assert verdict.failure is not None
            raise AuthFailure(verdict.failure, 403, None, "forbidden")
        for name, value in verdict.forwarded:
            headers[name] = value
        return verdict.consumer

    def _judge(self, der: bytes) -> CertificateVerdict:
        try:
            facts = read_certificate(der)
        except ValueError:
            return CertificateVerdict(None, "client certificate cannot be read", (), float("inf"))
        forwarded = []
        if self._subject_header is not None:
            forwarded.append((self._subject_header, facts.subject))
        if self._fingerprint_header is not None:
            forwarded.append((self._fingerprint_header, facts.fingerprint))
        consumer, failure = self._consumer_for(facts)
        return CertificateVerdict(consumer, failure, tuple(forwarded), facts.not_after)

    def _consumer_for(self, facts: CertificateFacts) -> tuple[Consumer | None, str | None]:
        candidates = [v for source in self._identity for v in facts.values.get(source, ())]
        candidates = [v for v in candidates if v and v.isprintable()]
        if not candidates:
            return None, "client certificate has no usable identity"
        mapped = next((v for v in candidates if v in self._mapping), None)
        name = self._mapping[mapped] if mapped is not None else candidates[0]
        configured = self._consumers.get(name)
        if configured is not None:
            return configured, None
        if self._require:
            return None, "client certificate does not belong to a known consumer"
        return Consumer(name=name, configured=False), None


def _peer_certificate(ctx: RequestContext) -> bytes | None:
    transport = ctx.request.transport
    if transport is None:
        return None
    ssl_object = transport.get_extra_info("ssl_object")
    if not isinstance(ssl_object, (ssl.SSLObject, ssl.SSLSocket)):
        return None
    return ssl_object.getpeercert(binary_form=True)


def build_authenticator(config: MtlsConfig, context: BuildContext) -> MtlsAuthenticator:
    """Build one `mtls` authenticator; mapped consumer names must be declared."""
    consumers = context.services.consumers
    if config.require_configured_consumer or config.consumers:
        unknown = sorted(set(config.consumers.values()) - set(consumers))
        if unknown:
            raise ValueError(
                f"consumers: {', '.join(map(repr, unknown))} not declared under `consumers`"
            )
    return MtlsAuthenticator(config, consumers)
