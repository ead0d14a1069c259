"""Kairos: a plugin-oriented API gateway. This module is the public face plugins build on."""

from kairos_core.admin.app import control_plane
from kairos_core.admin.body import json_error, read_json_body
from kairos_core.admin.redact import redact_url
from kairos_core.body_stream import RequestBodyTooLarge
from kairos_core.context import Consumer, RequestContext
from kairos_core.hookspecs import hookimpl
from kairos_core.plugin_api import (
    AdminRoute,
    AsyncBalancer,
    AuthDeferred,
    Authenticator,
    AuthFailure,
    AuthPlugin,
    Balancer,
    BalancerPlugin,
    BuildContext,
    GatewayServices,
    Handler,
    Middleware,
    NoConfig,
    Phase,
    ProtocolPlugin,
    RunningService,
    StagePlugin,
)
from kairos_core.response import Response, error_response
from kairos_core.upstream.pool import (
    BROKEN,
    CONNECT_ERROR,
    TIMEOUT,
    Backend,
    NoBackendAvailable,
    UpstreamPool,
)
from kairos_core.version import __version__

__all__ = [
    "BROKEN",
    "CONNECT_ERROR",
    "TIMEOUT",
    "AdminRoute",
    "AsyncBalancer",
    "AuthDeferred",
    "AuthFailure",
    "AuthPlugin",
    "Authenticator",
    "Backend",
    "Balancer",
    "BalancerPlugin",
    "BuildContext",
    "Consumer",
    "GatewayServices",
    "Handler",
    "Middleware",
    "NoBackendAvailable",
    "NoConfig",
    "Phase",
    "ProtocolPlugin",
    "RequestBodyTooLarge",
    "RequestContext",
    "Response",
    "RunningService",
    "StagePlugin",
    "UpstreamPool",
    "__version__",
    "control_plane",
    "error_response",
    "hookimpl",
    "json_error",
    "read_json_body",
    "redact_url",
]
