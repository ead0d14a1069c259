"""`kairos health`: is a running gateway up and ready (exit 1 when not)."""

from __future__ import annotations

import click

from kairos_cli.admin_options import Admin, admin_command, table


def _uptime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


@click.command()
@admin_command
def health(admin: Admin) -> None:
    """Health and readiness of a running gateway; exit 1 unless it is ok and ready."""
    status = admin.client.health()
    readiness = admin.client.ready()
    healthy = status.status == "ok" and readiness.ready
    if admin.as_json:
        admin.emit_json({"health": status, "ready": readiness})
    else:
        alive = status.workers if status.workers_alive is None else status.workers_alive
        checks = ", ".join(
            f"{name} {'ok' if passed else 'FAILED'}" for name, passed in readiness.checks.items()
        )
        rows = [
            ("status", status.status),
            ("ready", f"{'yes' if readiness.ready else 'no'} ({checks or 'no checks'})"),
            ("version", status.version),
            ("workers", f"{alive}/{status.workers} alive"),
        ]
        if status.routes is not None:
            rows.append(("routes", str(status.routes)))
        if status.uptime_seconds is not None:
            rows.append(("uptime", _uptime(status.uptime_seconds)))
        rows.append(("admin", admin.client.url))
        click.echo("\n".join(f"{name:<8} {value}" for name, value in rows))
        if status.worker_processes:
            click.echo()
            click.echo(
                table(
                    ("worker", "pid", "alive", "restarts"),
                    (
                        (w.id, w.pid or "-", "yes" if w.alive else "NO", w.restarts)
                        for w in status.worker_processes
                    ),
                    right=(0, 1, 3),
                )
            )
    if not healthy:
        raise SystemExit(1)
