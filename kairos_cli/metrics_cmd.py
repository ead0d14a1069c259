"""`kairos metrics`: a running gateway's traffic per route, in-flight requests and backends."""

from __future__ import annotations

import click

from kairos_cli.admin_options import Admin, admin_command, duration, number, table
from kairos_core.client import MetricsSummary


@click.command()
@click.option("--raw", is_flag=True, help="Print the Prometheus text exposition as scraped.")
@admin_command
def metrics(admin: Admin, raw: bool) -> None:
    """Requests, error rate and latency percentiles per route since start; backends up/down."""
    if raw:
        click.echo(admin.client.metrics_text(), nl=False)
        return
    summary = admin.client.metrics_summary()
    if admin.as_json:
        admin.emit_json(
            {
                **summary.model_dump(mode="json"),
                "backends_up": summary.backends_up,
                "backends_down": summary.backends_down,
            }
        )
        return
    click.echo(render(summary))


def render(summary: MetricsSummary) -> str:
    """The summary as aligned tables."""
    parts = []
    if summary.routes:
        rows: list[tuple[str, ...]] = [
            (
                route.route,
                number(route.requests),
                number(route.errors),
                number(route.client_errors),
                f"{route.error_rate:.1%}",
                duration(route.p50),
                duration(route.p95),
                duration(route.p99),
            )
            for route in summary.routes
        ]
        headers = ("route", "requests", "5xx", "4xx", "error rate", "p50", "p95", "p99")
        parts.append(table(headers, rows, right=range(1, 8)))
    else:
        parts.append("no requests yet")
    reloads = ", ".join(f"{k} {number(v)}" for k, v in sorted(summary.reloads.items()))
    parts.append(
        f"in flight {number(summary.in_flight)}, open connections "
        f"{number(summary.open_connections)}, reloads: {reloads or 'none'}"
    )
    if summary.backends:
        backend_rows = [
            (
                b.upstream,
                b.backend,
                "up" if b.up else "DOWN",
                b.circuit,
                number(b.in_flight),
            )
            for b in summary.backends
        ]
        parts.append(
            f"backends: {summary.backends_up} up, {summary.backends_down} down\n"
            + table(
                ("upstream", "backend", "state", "circuit", "in flight"), backend_rows, right=(4,)
            )
        )
    return "\n\n".join(parts)
