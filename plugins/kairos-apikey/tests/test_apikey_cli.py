"""`kairos apikey hash|generate`, in-process and through the installed `kairos` command."""

from __future__ import annotations

import hashlib
import subprocess
import sys

from click.testing import CliRunner
from kairos_apikey import apikey, hash_key


def test_hash_argument_and_stdin() -> None:
    expected = "sha256:" + hashlib.sha256(b"s3cret").hexdigest()
    runner = CliRunner()
    assert runner.invoke(apikey, ["hash", "s3cret"]).output == expected + "\n"
    assert runner.invoke(apikey, ["hash"], input="s3cret\n").output == expected + "\n"
    assert runner.invoke(apikey, ["hash", "-"], input="s3cret\n").output == expected + "\n"
    empty = runner.invoke(apikey, ["hash"], input="\n")
    assert empty.exit_code == 2
    assert "no key given" in empty.output


def test_generate_prints_a_key_and_its_hash() -> None:
    result = CliRunner().invoke(apikey, ["generate", "--prefix", "kk_", "--consumer", "alice"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    key = lines[0].removeprefix("key:  ")
    assert key.startswith("kk_")
    assert len(key) >= 3 + 43  # 32 random bytes, base64url
    assert lines[1] == f"hash: {hash_key(key)}"
    assert "  - consumer: alice" in lines
    assert f"    hash: {hash_key(key)}" in lines
    other = CliRunner().invoke(apikey, ["generate"]).output.splitlines()[0]
    assert other != lines[0]
    too_short = CliRunner().invoke(apikey, ["generate", "--bytes", "8"])
    assert too_short.exit_code == 2


def test_kairos_command_line_has_the_apikey_group() -> None:
    """The entry point's register_cli_commands adds `apikey` to the real `kairos` CLI."""
    done = subprocess.run(
        [sys.executable, "-m", "kairos_cli", "apikey", "hash", "abc"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == hash_key("abc")
