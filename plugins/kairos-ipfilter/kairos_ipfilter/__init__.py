"""kairos-ipfilter: admit or refuse clients by CIDR allow and deny lists, before authentication."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kairos_core import (
    BuildContext,
    Handler,
    Middleware,
    Phase,
    RequestContext,
    Response,
    StagePlugin,
    error_response,
    hookimpl,
)
from kairos_ipfilter.networks import AddressFilter, Network, RangeMap, parse_network

__all__ = ["AddressFilter", "IpFilterConfig", "RangeMap", "build", "parse_network"]


class IpFilterConfig(BaseModel):
    """Settings of the `ip-filter` plugin."""

    model_config = ConfigDict(extra="forbid")
    allow: list[str] = Field(
        default_factory=list,
        description="CIDR ranges or addresses admitted; when set, every other address is refused.",
    )
    deny: list[str] = Field(default_factory=list, description="CIDR ranges or addresses refused.")
    status: int = Field(403, ge=400, le=599, description="Status of the refusal.")
    message: str = Field(
        "your address is not allowed to use this route",
        description="The `message` of the JSON refusal.",
    )

    @field_validator("allow", "deny")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        for item in value:
            parse_network(item)
        return value

    def networks(self) -> tuple[list[Network], list[Network]]:
        """The parsed allow and deny lists."""
        return [parse_network(n) for n in self.allow], [parse_network(n) for n in self.deny]


def build(config: IpFilterConfig, context: BuildContext) -> Middleware:
    """Precompute the range tables once; per request one cached lookup."""
    allow, deny = config.networks()
    if not allow and not deny:
        raise ValueError("set `allow`, `deny` or both")
    admits = AddressFilter(allow, deny).admits
    status = config.status
    message = config.message
    refused = context.services.metrics.counter(
        "kairos_ip_filter_refused", "Requests refused by the ip-filter plugin.", ("route",)
    )
    counters: dict[str, Any] = {}

    async def ip_filter(ctx: RequestContext, call_next: Handler) -> Response:
        if admits(ctx.client_ip):
            return await call_next(ctx)
        name = ctx.route.name
        counter = counters.get(name)
        if counter is None:
            counter = counters[name] = refused.labels(name)
        counter.inc()
        return error_response(status, "ip_not_allowed", message, ctx.request_id)

    return ip_filter


@hookimpl
def register_filters(register: Callable[[StagePlugin[Any]], None]) -> None:
    """Register the `ip-filter` stage (pre-auth)."""
    register(
        StagePlugin(
            name="ip-filter",
            build=build,
            config_model=IpFilterConfig,
            phase=Phase.PRE_AUTH,
            priority=200,
            description="Admit or refuse clients by CIDR allow and deny lists.",
        )
    )
