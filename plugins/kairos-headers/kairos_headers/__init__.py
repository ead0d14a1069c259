"""kairos-headers: add, set and remove request and response headers on a route."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kairos_core import (
    BuildContext,
    Handler,
    Middleware,
    RequestContext,
    Response,
    StagePlugin,
    hookimpl,
)


class HeaderRules(BaseModel):
    """Header edits for one direction; applied in the order remove, set, add."""

    model_config = ConfigDict(extra="forbid")
    remove: list[str] = Field(default_factory=list, description="Header names to drop.")
    set: dict[str, str] = Field(
        default_factory=dict, description="Replace or create these headers."
    )
    add: dict[str, str] = Field(
        default_factory=dict, description="Create these headers only when absent."
    )

    def is_empty(self) -> bool:
        """True when there is nothing to do."""
        return not (self.remove or self.set or self.add)


class HeadersConfig(BaseModel):
    """Settings of the `headers` plugin."""

    model_config = ConfigDict(extra="forbid")
    request: HeaderRules = Field(default_factory=HeaderRules, description="Edits sent upstream.")
    response: HeaderRules = Field(
        default_factory=HeaderRules, description="Edits on the response to the client."
    )


def _editor(rules: HeaderRules) -> Callable[[Any], None]:
    remove = tuple(rules.remove)
    set_items = tuple(rules.set.items())
    add_items = tuple(rules.add.items())

    def edit(headers: Any) -> None:
        for name in remove:
            headers.popall(name, None)
        for name, value in set_items:
            headers[name] = value
        for name, value in add_items:
            if name not in headers:
                headers[name] = value

    return edit


def build(config: HeadersConfig, context: BuildContext) -> Middleware:
    """Build the stage for one route (or globally)."""
    edit_request = None if config.request.is_empty() else _editor(config.request)
    edit_response = None if config.response.is_empty() else _editor(config.response)

    async def headers_stage(ctx: RequestContext, call_next: Handler) -> Response:
        if edit_request is not None:
            edit_request(ctx.headers)
        response = await call_next(ctx)
        if edit_response is not None:
            edit_response(response.headers)
        return response

    return headers_stage


@hookimpl
def register_transformers(register: Callable[[StagePlugin[Any]], None]) -> None:
    """Register the `headers` transformer."""
    register(
        StagePlugin(
            name="headers",
            build=build,
            config_model=HeadersConfig,
            priority=100,
            description="Add, set and remove request and response headers.",
        )
    )
