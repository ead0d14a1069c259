"""Settings of the `ftp` listener, validated with the gateway config."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ByteSize, ConfigDict, Field, field_validator, model_validator

Seconds = Annotated[float, Field(gt=0)]
_ALIAS_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_RANGE_RE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")


class GatewayTLS(BaseModel):
    """Explicit FTPS (`AUTH TLS`) terminated at the gateway."""

    model_config = ConfigDict(extra="forbid")
    cert: str = Field(description="Path to the PEM certificate chain the gateway presents.")
    key: str = Field(description="Path to the PEM private key of `cert`.")
    min_version: Literal["TLSv1.2", "TLSv1.3"] = Field(
        "TLSv1.2", description="Oldest TLS version accepted from clients."
    )
    require_control: bool = Field(
        False, description="Refuse `USER` until the client has upgraded with `AUTH TLS`."
    )
    require_data: bool = Field(
        False, description="Refuse data connections until the client has sent `PROT P`."
    )


class FtpListenerSettings(BaseModel):
    """The `config:` of an `ftp` listener."""

    model_config = ConfigDict(extra="forbid")
    upstream: str | None = Field(
        None, description="Upstream pool (`ftp://` / `ftps://` backends) that logins go to."
    )
    aliases: dict[str, str] = Field(
        default_factory=dict,
        description="Site name -> upstream pool: `USER name@site` logs `name` in on that pool. "
        "Only these names route; a login can never name an arbitrary host.",
    )
    greeting: str = Field(
        "Kairos FTP gateway ready", description="Text of the gateway's `220` greeting."
    )
    passive_ports: str | None = Field(
        None,
        description="Port range for the gateway's passive data listeners, e.g. `50000-50100`; "
        "any free port when unset.",
    )
    passive_address: str | None = Field(
        None,
        description="IPv4 address advertised in `PASV` replies (behind NAT); by default the "
        "address the client reached the gateway on.",
    )
    backend_data: Literal["passive", "active"] = Field(
        "passive",
        description="How the gateway opens data connections to the backend: `passive` "
        "(EPSV/PASV, the gateway connects) or `active` (EPRT/PORT, the backend connects back).",
    )
    backend_passive_address: Literal["control", "reply"] = Field(
        "control",
        description="Where a backend's passive port is reached: `control` (the backend's "
        "control-connection address; safe behind NAT) or `reply` (the address in its PASV reply).",
    )
    backend_data_protection: Literal["private", "clear"] = Field(
        "private",
        description="For `ftps://` backends: `private` sends `PROT P` (TLS data connections), "
        "`clear` keeps backend data connections in plaintext.",
    )
    tls: GatewayTLS | None = Field(None, description="Offer `AUTH TLS` with this certificate.")
    idle_timeout: Seconds = Field(
        300.0, description="Close a control connection after this long without a command."
    )
    data_timeout: Seconds = Field(
        60.0, description="Abort a data transfer that moved no byte for this long."
    )
    data_connect_timeout: Seconds = Field(
        30.0, description="Time for both ends of a data connection to connect."
    )
    connect_timeout: Seconds = Field(
        10.0, description="Time to connect to a backend and read its greeting (and TLS)."
    )
    reply_timeout: Seconds = Field(
        60.0, description="Time a backend has to answer a command (a transfer may run longer)."
    )
    max_sessions: int = Field(1000, ge=1, description="Concurrent sessions on this listener.")
    max_sessions_per_client: int = Field(
        20, ge=1, description="Concurrent sessions from one client IP address."
    )
    max_login_failures: int = Field(
        3, ge=1, description="Failed logins (`530`) before the session is closed."
    )
    connect_attempts: int = Field(
        2, ge=1, le=10, description="Backends tried when connecting to one fails."
    )
    zero_copy: bool = Field(
        True,
        description="On Linux, relay plaintext data connections inside the kernel with "
        "splice(2); TLS legs (and other systems) copy through `buffer_size` buffers.",
    )
    buffer_size: ByteSize = Field(
        ByteSize(1024 * 1024),
        ge=16 * 1024,
        description="Data bytes buffered per direction before the sender is paused.",
    )

    @field_validator("aliases")
    @classmethod
    def _valid_aliases(cls, value: dict[str, str]) -> dict[str, str]:
        for alias in value:
            if not _ALIAS_RE.match(alias):
                raise ValueError(
                    f"alias {alias!r}: use letters, digits, '.', '_' or '-' (no '@', no spaces)"
                )
        return {alias.lower(): pool for alias, pool in value.items()}

    @field_validator("passive_ports")
    @classmethod
    def _valid_range(cls, value: str | None) -> str | None:
        if value is not None:
            port_range(value)
        return value

    @field_validator("passive_address")
    @classmethod
    def _valid_address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            raise ValueError("must be an IPv4 address (PASV replies carry one)") from None
        return value

    @model_validator(mode="after")
    def _has_destination(self) -> FtpListenerSettings:
        if self.upstream is None and not self.aliases:
            raise ValueError("set `upstream`, `aliases`, or both")
        return self

    def pool_names(self) -> dict[str, str]:
        """Every pool this listener refers to, with the field that names it."""
        names = {f"aliases.{alias}": pool for alias, pool in self.aliases.items()}
        if self.upstream is not None:
            names["upstream"] = self.upstream
        return names


def port_range(text: str) -> range:
    """Parse `first-last` into a range of ports; raise ValueError when it is not one."""
    found = _RANGE_RE.match(text)
    if found is None:
        raise ValueError("expected `first-last`, e.g. `50000-50100`")
    first, last = int(found.group(1)), int(found.group(2))
    if not 1024 <= first <= last <= 65535:
        raise ValueError("ports must satisfy 1024 <= first <= last <= 65535")
    return range(first, last + 1)
