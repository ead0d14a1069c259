"""`kairos plugins new NAME`: the scaffold installs, is listed unchanged, and its tests pass."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from kairos_cli.main import cli


def kairos(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the real `kairos` command line in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "kairos_cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_scaffold_installs_is_listed_and_its_tests_pass(install_distribution, tmp_path):
    created = kairos(
        "plugins", "new", "stamp-it", "--description", "Stamps it's $1 replies.", cwd=tmp_path
    )
    assert created.returncode == 0, created.stderr
    project = tmp_path / "kairos-stamp-it"
    assert "tests/test_kairos_stamp_it.py" in created.stdout
    assert sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file()) == [
        "README.md",
        "kairos_stamp_it/__init__.py",
        "kairos_stamp_it/py.typed",
        "pyproject.toml",
        "tests/test_kairos_stamp_it.py",
    ]

    site = install_distribution(project)
    listed = site.kairos("plugins", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    row = next(r for r in json.loads(listed.stdout) if r["name"] == "stamp-it")
    assert (row["distribution"], row["version"], row["target"]) == (
        "kairos-stamp-it",
        "0.1.0",
        "kairos_stamp_it",
    )
    hooks = site.kairos("plugins", "list", "--hooks")
    assert "register_transformers" in hooks.stdout, hooks.stderr

    run_dir = tmp_path / "run"  # tests and pytest settings only: the import must hit the wheel
    shutil.copytree(project / "tests", run_dir / "tests")
    shutil.copy(project / "pyproject.toml", run_dir)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=run_dir,
        env={**os.environ, **site.env()},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout


def test_generated_module_is_valid_python_with_its_description(tmp_path):
    result = CliRunner().invoke(
        cli,
        ["plugins", "new", "kairos-rate-stamp", "-d", str(tmp_path), "--description", "It's $5"],
    )
    assert result.exit_code == 0, result.output
    project = tmp_path / "kairos-rate-stamp"  # the kairos- prefix is not doubled
    module = (project / "kairos_rate_stamp" / "__init__.py").read_text()
    tree = ast.parse(module)
    assert ast.get_docstring(tree) == "kairos-rate-stamp: It's $5"
    assert "class RateStampConfig(BaseModel)" in module
    assert 'name="rate-stamp"' in module
    assert 'rate-stamp = "kairos_rate_stamp"' in (project / "pyproject.toml").read_text()


def test_refuses_to_overwrite(tmp_path):
    runner = CliRunner()
    assert runner.invoke(cli, ["plugins", "new", "twice", "-d", str(tmp_path)]).exit_code == 0
    readme = tmp_path / "kairos-twice" / "README.md"
    readme.write_text("mine")
    again = runner.invoke(cli, ["plugins", "new", "twice", "-d", str(tmp_path)])
    assert again.exit_code == 1
    assert "already exists" in again.output
    assert readme.read_text() == "mine"


def test_rejects_unusable_names_and_descriptions(tmp_path):
    runner = CliRunner()
    bad_name = runner.invoke(cli, ["plugins", "new", "My Plugin", "-d", str(tmp_path)])
    assert bad_name.exit_code == 2
    assert "lower-case letters" in bad_name.output
    bad_text = runner.invoke(
        cli, ["plugins", "new", "ok", "-d", str(tmp_path), "--description", 'a "b"']
    )
    assert bad_text.exit_code == 2
    assert "double quotes" in bad_text.output
    assert list(tmp_path.iterdir()) == []
