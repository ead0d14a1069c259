"""The command line: validate, routes test, plugins list, and plugin loading failures."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from kairos_cli.main import cli

CONFIG = """
upstreams:
  users:
    backends: [{url: "http://127.0.0.1:9001"}, {url: "http://127.0.0.1:9002"}]
routes:
  - name: user
    path: /api/users/{id}
    methods: [GET]
    rewrite: /v1/user/{id}
    upstream: users
    plugins:
      - name: headers
        config: {request: {set: {X-A: "1"}}}
  - name: static
    prefix: /static
    hosts: ["*.example.com"]
    strip_prefix: true
    upstream: {backends: [{url: "https://cdn.internal:8443"}]}
"""


def write(tmp_path: Path, text: str = CONFIG, name: str = "gw.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_validate_ok_and_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["validate", write(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "OK (2 routes, 2 upstream pools, plugins: headers)" in result.output
    bad = write(
        tmp_path,
        CONFIG.replace('config: {request: {set: {X-A: "1"}}}', "config: {bogus: 1}"),
        "bad.yaml",
    )
    result = runner.invoke(cli, ["validate", bad])
    assert result.exit_code == 1
    assert "bad.yaml:13: routes[0].plugins[0].config.bogus: unknown field" in result.output
    assert "Traceback" not in result.output


def test_routes_test_dry_run(tmp_path: Path) -> None:
    runner = CliRunner()
    path = write(tmp_path)
    result = runner.invoke(
        cli, ["routes", "test", path, "GET", "http://api.local/api/users/42?x=1", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["route"] == "user"
    assert data["params"] == {"id": "42"}
    assert data["upstream_url"] == "http://127.0.0.1:9001/v1/user/42?x=1"
    assert [link["name"] for link in data["chain"]] == ["headers", "proxy"]
    result = runner.invoke(
        cli, ["routes", "test", path, "GET", "/static/css/a.css", "-H", "Host: www.example.com"]
    )
    assert result.exit_code == 0, result.output
    assert "route:     static" in result.output
    assert "https://cdn.internal:8443/css/a.css" in result.output
    result = runner.invoke(cli, ["routes", "test", path, "DELETE", "/api/users/42"])
    assert result.exit_code == 1
    assert "no route: 405 (allowed methods: GET)" in result.output


def test_plugins_list_reads_entry_points(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["plugins", "list", "--json", "--config", write(tmp_path)])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["headers"]["distribution"] == "kairos-headers"
    assert rows["headers"]["enabled"] is True
    result = runner.invoke(cli, ["plugins", "list", "--hooks"])
    assert result.exit_code == 0, result.output
    # Column width follows the longest installed name, so other plugins may widen it.
    assert re.search(r"^headers +kairos-headers ", result.output, re.M), result.output
    assert "register_transformers" in result.output


def fake_distribution(
    site: Path, name: str, module: str, code: str, entry_points: dict[str, str]
) -> None:
    (site / f"{module}.py").write_text(code)
    info = site / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[kairos]\n{lines}\n")


def run_kairos(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run(
        [sys.executable, "-m", "kairos_cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_broken_and_misspelt_plugins_stop_startup(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    fake_distribution(
        site,
        "kairos-broken",
        "kairos_broken",
        "import not_a_real_module\n",
        {"broken": "kairos_broken"},
    )
    fake_distribution(
        site,
        "kairos-typo",
        "kairos_typo",
        "from kairos_core import hookimpl\n\n@hookimpl\ndef register_transformerz(register):\n    pass\n",
        {"typo": "kairos_typo"},
    )
    listed = run_kairos(site, "plugins", "list")
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"^broken +kairos-broken 0\.1  -", listed.stdout, re.M), listed.stdout
    assert re.search(r"^typo +kairos-typo 0\.1  -", listed.stdout, re.M), listed.stdout
    base = "routes:\n  - path: /a\n    upstream: {backends: [{url: 'http://127.0.0.1:9'}]}\n    plugins: [{name: %s}]\n"
    broken = run_kairos(site, "validate", write(tmp_path, base % "broken", "b.yaml"))
    assert broken.returncode == 1
    assert "plugin 'broken' (distribution kairos-broken 0.1) failed to load" in broken.stderr
    assert "No module named 'not_a_real_module'" in broken.stderr
    typo = run_kairos(site, "validate", write(tmp_path, base % "typo", "t.yaml"))
    assert typo.returncode == 1
    assert "unknown hook" in typo.stderr
    assert "register_transformerz" in typo.stderr
