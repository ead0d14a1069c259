"""`kairos backends`: every upstream pool's backends with health, circuit and in-flight."""

from __future__ import annotations

import click

from kairos_cli.admin_options import Admin, admin_command, table


@click.command()
@admin_command
def backends(admin: Admin) -> None:
    """Upstream pools of a running gateway and the live state of each backend."""
    pools = admin.client.upstreams()
    if admin.as_json:
        admin.emit_json(pools)
        return
    rows = [
        (
            pool.name,
            pool.balancer,
            backend.name,
            backend.url,
            backend.weight,
            backend.state,
            backend.circuit or "-",
            backend.in_flight,
        )
        for pool in pools
        for backend in pool.backends
    ]
    if not rows:
        click.echo("no upstream backends")
        return
    headers = ("upstream", "balancer", "backend", "url", "weight", "state", "circuit", "in flight")
    click.echo(table(headers, rows, right=(4, 7)))
    available = sum(1 for pool in pools for backend in pool.backends if backend.available)
    noun = "backend" if len(rows) == 1 else "backends"
    click.echo(f"\n{len(rows)} {noun}: {available} available, {len(rows) - available} not")
