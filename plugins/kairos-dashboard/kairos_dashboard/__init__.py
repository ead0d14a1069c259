"""Kairos dashboard: live traffic, routes, backends, plugins and config on the admin listener."""

from __future__ import annotations

from collections.abc import Callable

from kairos_core import AdminRoute, hookimpl
from kairos_dashboard.assets import MOUNT, admin_routes

__all__ = ["MOUNT", "register_admin_routes"]


@hookimpl
def register_admin_routes(register: Callable[[AdminRoute], None]) -> None:
    """Serve the dashboard at `/dashboard/` (enable it with `admin.plugins: [dashboard]`)."""
    for route in admin_routes():
        register(route)
