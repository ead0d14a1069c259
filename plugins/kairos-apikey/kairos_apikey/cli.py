"""`kairos apikey hash` and `kairos apikey generate`: make keys and the hashes the config stores."""

from __future__ import annotations

import sys

import click

from kairos_apikey.keys import generate_key, hash_key


@click.group(name="apikey")
def apikey() -> None:
    """Create API keys and the SHA-256 hashes that go into the gateway config."""


@apikey.command(name="hash")
@click.argument("key", required=False)
def hash_command(key: str | None) -> None:
    """Print the stored form (sha256:...) of KEY; reads it from stdin when KEY is omitted or -."""
    if key is None or key == "-":
        key = sys.stdin.readline().rstrip("\r\n")
    if not key:
        raise click.UsageError("no key given (pass it as an argument or on stdin)")
    click.echo(hash_key(key))


@apikey.command(name="generate")
@click.option(
    "--bytes",
    "nbytes",
    type=click.IntRange(min=16),
    default=32,
    show_default=True,
    help="Random bytes in the key.",
)
@click.option("--prefix", default="", help="Text put before the random part (e.g. `kairos_`).")
@click.option("--consumer", default=None, help="Also print a config entry for this consumer.")
def generate_command(nbytes: int, prefix: str, consumer: str | None) -> None:
    """Print a new random key and its hash (give the key to the client, store only the hash)."""
    key = generate_key(nbytes, prefix)
    digest = hash_key(key)
    click.echo(f"key:  {key}")
    click.echo(f"hash: {digest}")
    if consumer:
        click.echo("config entry (under the apikey plugin's `keys:`):")
        click.echo(f"  - consumer: {consumer}\n    hash: {digest}")
