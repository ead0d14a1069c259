"""`python -m kairos_cli` runs the `kairos` command."""

from kairos_cli.main import cli

cli()
