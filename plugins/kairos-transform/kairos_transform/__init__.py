"""kairos-transform: edit requests and responses (headers, path, query, JSON bodies, status)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kairos_core import (
    BuildContext,
    Handler,
    Middleware,
    RequestContext,
    Response,
    StagePlugin,
    hookimpl,
)
from kairos_transform.config import TransformConfig
from kairos_transform.request import RequestTransform
from kairos_transform.response import ResponseTransform

__all__ = ["RequestTransform", "ResponseTransform", "TransformConfig", "build"]


def build(config: TransformConfig, context: BuildContext) -> Middleware:
    """Compile every rule once; the stage only runs the prebuilt steps that have work."""
    request = RequestTransform(config.request)
    response = ResponseTransform(config.response)
    edit_target = request.edit_target if request.edits_target else None
    edit_body = request.edit_body if request.body else None
    edit_headers = response.edit_headers if response and response.headers_only else None
    edit_response = response.apply if response and not response.headers_only else None

    async def transform(ctx: RequestContext, call_next: Handler) -> Response:
        if edit_target is not None:
            edit_target(ctx)
        if edit_body is not None:
            refusal = await edit_body(ctx)
            if refusal is not None:
                return refusal
        upstream = await call_next(ctx)
        if edit_headers is not None:
            return edit_headers(ctx, upstream)
        if edit_response is not None:
            return await edit_response(ctx, upstream)
        return upstream

    return transform


@hookimpl
def register_transformers(register: Callable[[StagePlugin[Any]], None]) -> None:
    """Register the `transform` stage."""
    register(
        StagePlugin(
            name="transform",
            build=build,
            config_model=TransformConfig,
            priority=50,
            description="Edit request and response headers, path, query, JSON bodies and status.",
        )
    )
