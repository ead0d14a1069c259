"""The typed client SDK of the admin API: `AsyncAdminClient` (aiohttp) and `AdminClient` (blocking).

    from kairos_core.client import AdminClient

    with AdminClient("http://127.0.0.1:9901", token="...") as admin:
        print(admin.health().status, [route.name for route in admin.routes()])

Answers are the pydantic models the server itself uses (`kairos_core.admin.models`); errors are
exceptions carrying the server's status, type and message. These names are exported here only,
not from `kairos_core`, which stays the small face plugins import.
"""

from kairos_core.admin.models import (
    BackendInfo,
    ChainLinkInfo,
    Health,
    PluginInfo,
    Problem,
    Readiness,
    ReloadResult,
    RouteInfo,
    UpstreamInfo,
    ValidationResult,
    WorkerProcess,
)
from kairos_core.client.async_client import DEFAULT_TIMEOUT, DEFAULT_URL, AsyncAdminClient
from kairos_core.client.errors import (
    AdminClientError,
    AdminError,
    InvalidResponse,
    NotFound,
    ReloadFailed,
    Unauthorized,
    Unreachable,
)
from kairos_core.client.summary import BackendState, MetricsSummary, RouteTraffic, summarize
from kairos_core.client.sync_client import AdminClient

__all__ = [
    "DEFAULT_TIMEOUT",
    "DEFAULT_URL",
    "AdminClient",
    "AdminClientError",
    "AdminError",
    "AsyncAdminClient",
    "BackendInfo",
    "BackendState",
    "ChainLinkInfo",
    "Health",
    "InvalidResponse",
    "MetricsSummary",
    "NotFound",
    "PluginInfo",
    "Problem",
    "Readiness",
    "ReloadFailed",
    "ReloadResult",
    "RouteInfo",
    "RouteTraffic",
    "Unauthorized",
    "Unreachable",
    "UpstreamInfo",
    "ValidationResult",
    "WorkerProcess",
    "summarize",
]
