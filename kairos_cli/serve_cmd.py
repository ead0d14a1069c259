"""`kairos serve`: run the gateway."""

from __future__ import annotations

import click

from kairos_core.config.errors import ConfigError
from kairos_core.plugins import PluginError
from kairos_core.process import (
    ServeInfo,
    ServeOptions,
    log_config_warnings,
    resolve_config,
    run,
    serve_single,
)
from kairos_core.telemetry.logs import configure_logging
from kairos_core.tls import TLSConfigError
from kairos_core.version import __version__


def print_ready(info: ServeInfo) -> None:
    """Tell the user where the gateway answers (every URL printed answers 200 on the default config)."""
    click.echo(f"Kairos {__version__} is serving ({info.config_source}).")
    for url in info.listeners:
        click.echo(f"  proxy   {url}/")
    if info.admin_url:
        click.echo(f"  admin   {info.admin_url}/health")
    if info.samples and info.listeners:
        click.echo("Try:")
        for path in info.samples:
            click.echo(f"  {info.listeners[0]}{path}")
    click.echo("Press Ctrl+C to stop.")


@click.command()
@click.option(
    "--config",
    "-c",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="KAIROS_CONFIG",
    help="YAML or JSON config file (default: the embedded demo config).",
)
@click.option("--host", help="Bind address of the first HTTP listener.")
@click.option("--port", type=click.IntRange(0, 65535), help="Port of the first HTTP listener.")
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=1,
    show_default=True,
    help="Worker processes sharing the port (SO_REUSEPORT).",
)
@click.option("--upstream", metavar="URL", help="Zero-config mode: proxy every path to URL.")
@click.option("--admin", metavar="HOST:PORT|off", help="Admin listener address, or `off`.")
@click.option("--watch", is_flag=True, help="Reload when the config file changes.")
@click.pass_context
def serve(
    ctx: click.Context,
    config_path: str | None,
    host: str | None,
    port: int | None,
    workers: int,
    upstream: str | None,
    admin: str | None,
    watch: bool,
) -> None:
    """Run the gateway until SIGINT/SIGTERM; SIGHUP reloads the config file."""
    options = ServeOptions(config_path, host, port, workers, upstream, admin, watch)
    try:
        loaded = resolve_config(options)
        logs = loaded.config.observability.logs
        configure_logging((ctx.obj or {}).get("log_level") or logs.level, logs.format)
        log_config_warnings(loaded)
        if workers > 1:
            from kairos_core.workers import serve_workers

            serve_workers(loaded, options, print_ready)
        else:
            run(serve_single(loaded, options, print_ready))
    except ConfigError as exc:
        raise click.ClickException(exc.render()) from None
    except (PluginError, TLSConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot start: {exc.strerror or exc}") from None
    except KeyboardInterrupt:
        pass
