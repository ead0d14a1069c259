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
    """Compile every rule once; the stage only runs the prebuilt closures."""
    request = RequestTransform(config.request)
    response = ResponseTransform(config.response)
    if not request and not response:

        async def no_transform(ctx: RequestContext, call_next: Handler) -> Response:
            return await call_next(ctx)

        return no_transform  # nothing configured (e.g. a converted seed route with empty lists)
    if not response:

        async def transform_request(ctx: RequestContext, call_next: Handler) -> Response:
            refusal = await request.apply(ctx)
            if refusal is not None:
                return refusal
            return await call_next(ctx)

        return transform_request
    if not request:

        async def transform_response(ctx: RequestContext, call_next: Handler) -> Response:
            return await response.apply(ctx, await call_next(ctx))

        return transform_response

    async def transform(ctx: RequestContext, call_next: Handler) -> Response:
        refusal = await request.apply(ctx)
        if refusal is not None:
            return refusal
        return await response.apply(ctx, await call_next(ctx))

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
