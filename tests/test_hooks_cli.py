"""register_cli_commands: an installed plugin adds a command to the real `kairos` command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PLUGIN = '''
"""A plugin that adds `kairos probe-greet`."""

import click

from kairos_core import hookimpl


@hookimpl
def register_cli_commands(cli):
    @cli.command("probe-greet")
    @click.option("--name", default="world", help="Who to greet.")
    def greet(name):
        """Greet someone (added by a plugin)."""
        click.echo(f"hello {name} from a plugin")
'''


@pytest.fixture
def plugin_site(tmp_path: Path) -> Path:
    """A directory laid out like site-packages with an installed `kairos-cli-probe` plugin."""
    (tmp_path / "kairos_cli_probe.py").write_text(PLUGIN)
    info = tmp_path / "kairos_cli_probe-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: kairos-cli-probe\nVersion: 0.1.0\n"
    )
    (info / "entry_points.txt").write_text("[kairos]\ncli-probe = kairos_cli_probe\n")
    return tmp_path


def kairos(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `kairos ARGS` in a subprocess that has `site` on its path."""
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "kairos_cli", *args],
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_plugin_command_runs_and_is_listed(plugin_site):
    done = kairos(plugin_site, "probe-greet", "--name", "Ada")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hello Ada from a plugin\n"
    helped = kairos(plugin_site, "--help")
    assert "probe-greet" in helped.stdout
    assert "Greet someone" in helped.stdout
    listed = kairos(plugin_site, "plugins", "list", "--hooks")
    assert "cli-probe" in listed.stdout
    assert "register_cli_commands" in listed.stdout


def test_broken_plugin_does_not_break_builtin_commands(plugin_site):
    (plugin_site / "kairos_cli_probe.py").write_text("raise RuntimeError('broken on import')\n")
    helped = kairos(plugin_site, "--help")
    assert helped.returncode == 0
    assert "serve" in helped.stdout
    assert "some plugin commands are unavailable" in helped.stderr
    assert "broken on import" in helped.stderr
    missing = kairos(plugin_site, "probe-greet")
    assert missing.returncode == 2
    assert "No such command 'probe-greet'" in missing.stderr
