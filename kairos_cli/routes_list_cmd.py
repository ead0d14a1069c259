"""`kairos routes list`: the routes a running gateway serves, with match rules and plugin chain."""

from __future__ import annotations

import click

from kairos_cli.admin_options import Admin, admin_command, table
from kairos_core.client import RouteInfo


def _match(route: RouteInfo) -> str:
    if route.path is not None:
        return route.path
    prefix = route.prefix or "/"
    return f"{prefix.rstrip('/')}/*" + (" (strip)" if route.strip_prefix else "")


@click.command("list")
@admin_command
def list_routes(admin: Admin) -> None:
    """Routes of a running gateway (ask its admin API), in match order."""
    routes = admin.client.routes()
    if admin.as_json:
        admin.emit_json(routes)
        return
    if not routes:
        click.echo("no routes")
        return
    rows = [
        (
            route.name,
            ",".join(route.methods) if route.methods else "*",
            ",".join(route.hosts) or "*",
            _match(route) + (f" -> {route.rewrite}" if route.rewrite else ""),
            route.upstream,
            ", ".join(link.name for link in route.chain if link.name != "proxy") or "-",
        )
        for route in routes
    ]
    click.echo(table(("route", "methods", "hosts", "match", "upstream", "plugins"), rows))
