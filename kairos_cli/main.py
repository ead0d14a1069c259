"""The `kairos` command group; plugin commands are loaded only when asked for."""

from __future__ import annotations

import click

from kairos_cli.backends_cmd import backends
from kairos_cli.config_cmd import config
from kairos_cli.config_migrate import migrate
from kairos_cli.health_cmd import health
from kairos_cli.metrics_cmd import metrics
from kairos_cli.plugins_cmd import plugins
from kairos_cli.routes_cmd import routes
from kairos_cli.serve_cmd import serve
from kairos_cli.validate_cmd import validate
from kairos_core.telemetry.logs import configure_logging
from kairos_core.version import __version__


class KairosGroup(click.Group):
    """A click group that adds plugin commands (register_cli_commands) on first need."""

    _plugins_loaded = False

    def _load_plugin_commands(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        from kairos_core.plugins import PluginError, PluginHost

        host = PluginHost()
        try:
            host.load_all()
        except PluginError as exc:
            click.echo(f"warning: some plugin commands are unavailable:\n{exc}", err=True)
        host.call("register_cli_commands", cli=self)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Built-in command, else one a plugin adds."""
        command = super().get_command(ctx, cmd_name)
        if command is None:
            self._load_plugin_commands()
            command = super().get_command(ctx, cmd_name)
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Built-in and plugin commands."""
        self._load_plugin_commands()
        return super().list_commands(ctx)


@click.group(cls=KairosGroup)
@click.version_option(__version__, prog_name="kairos")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default=None,
    envvar="KAIROS_LOG_LEVEL",
    help="Application log level (default: the config's observability.logs.level, else info).",
)
@click.pass_context
def cli(ctx: click.Context, log_level: str | None) -> None:
    """Kairos: a plugin-oriented API gateway."""
    ctx.obj = {"log_level": log_level}
    configure_logging(log_level or "info", "text")


cli.add_command(serve)
cli.add_command(validate)
cli.add_command(routes)
cli.add_command(plugins)
cli.add_command(health)
cli.add_command(metrics)
cli.add_command(backends)
cli.add_command(config)
config.add_command(migrate)
