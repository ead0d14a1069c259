"""`kairos validate` accepts seed configs; `kairos config migrate` writes equivalent native YAML."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from seed_examples import EXAMPLE_PATH, example, router, write

from kairos_cli.main import cli
from kairos_core.config import load_config, load_config_text
from kairos_core.config.seed import convert_seed
from kairos_core.process import ServeOptions, apply_overrides

HAS_AI = importlib.util.find_spec("kairos_ai") is not None


@pytest.fixture(autouse=True)
def _openai_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")  # the ai balancer needs its key variable set


def installed(config: dict[str, Any]) -> dict[str, Any]:
    """`config` without its AI parts when the kairos-ai plugin is not installed."""
    if not HAS_AI:
        del router(config, "/chat")["ai_policy"]
        del config["ai"]
    return config


def run(*args: str) -> Any:
    """Invoke the CLI; the result has `exit_code`, `stdout` and `stderr`."""
    return CliRunner().invoke(cli, list(args))


def test_validate_accepts_the_seed_example_with_warnings(tmp_path: Path) -> None:
    path = write(tmp_path, installed(example()), "config.json")
    result = run("validate", str(path))
    assert result.exit_code == 0, result.output
    assert (
        f"{path}: OK (4 routes, 4 upstream pools, plugins: jwt, rate-limit, transform)"
        in result.stdout
    )
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert [w.split(": ")[2] for w in warnings] == [
        "jwt.secret",
        "routers[0].backends[1]",
        *(["routers[1].ai_policy"] if HAS_AI else []),
    ]
    assert warnings[0].startswith(f"warning: {path}:4: jwt.secret:")


def test_validate_reports_unknown_seed_fields(tmp_path: Path) -> None:
    config = example()
    config["routers"][2]["timeout"] = 30
    config["rate_limit"]["requests_per_minute"] = 5
    path = write(tmp_path, config)
    text = path.read_text().splitlines()
    rpm, timeout = (
        next(n for n, line in enumerate(text, 1) if f'"{key}"' in line)
        for key in ("requests_per_minute", "timeout")
    )
    result = run("validate", str(path))
    assert result.exit_code == 1
    unknown = "unknown field in the seed config.json format"
    assert f"{path}:{rpm}: rate_limit.requests_per_minute: {unknown}" in result.output
    assert f"{path}:{timeout}: routers[2].timeout: {unknown}" in result.output
    assert "Traceback" not in result.output


def test_migrate_writes_native_yaml_that_validates_and_matches(tmp_path: Path) -> None:
    config = installed(example())
    router(config, "/legacy/status")["auth_required"] = True  # two routes share the jwt settings
    seed = write(tmp_path, config)
    result = run("config", "migrate", str(seed))
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert text.startswith("# Kairos configuration converted from config.json")
    assert "#  - " in text and "jwt.secret" in text  # the warnings head the file too
    assert "jwt.secret" in result.stderr
    assert "config: &jwt" in text and "config: *jwt" in text  # the secret is written once
    assert "methods: [GET, PUT]" in text
    native = yaml.safe_load(text)
    assert native == convert_seed(json.loads(seed.read_text()), str(seed)).data
    out = tmp_path / "gw.yaml"
    out.write_text(text)
    result = run("validate", str(out))
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr
    from_yaml, from_seed = load_config(out).config, load_config(seed).config
    assert from_yaml == from_seed


def test_migrate_keeps_regex_groups_and_env_references(tmp_path: Path) -> None:
    config = installed(example())
    config["jwt"]["secret"] = "${SEED_TEST_JWT_SECRET}"
    transformation = router(config, "/api/users/{id}")["request_transformation"]
    transformation["path"] = {
        "pattern": "^/v1/(?P<kind>[a-z]+)/(.+)$",
        "replacement": "/${kind}/$2",
    }
    result = run("config", "migrate", str(write(tmp_path, config)), "-o", str(tmp_path / "gw.yaml"))
    assert result.exit_code == 0, result.output
    assert "wrote" in result.stderr
    text = (tmp_path / "gw.yaml").read_text()
    assert "replacement: /$kind/$2" in text and "${kind}" not in text
    assert "secret: ${SEED_TEST_JWT_SECRET}" in text
    assert "jwt.secret" not in text  # an env reference needs no warning
    loaded = load_config(tmp_path / "gw.yaml", env={"SEED_TEST_JWT_SECRET": "k" * 32})
    assert (
        loaded.config.routes[0].plugins[1].config["request"]["path"]["replacement"] == "/$kind/$2"
    )


def test_migrate_refuses_what_is_not_a_seed_config(tmp_path: Path) -> None:
    native = tmp_path / "gw.yaml"
    native.write_text("routes: []\n")
    result = run("config", "migrate", str(native))
    assert result.exit_code == 1
    assert "not in the seed system's config.json format" in result.output
    result = run("config", "migrate", str(tmp_path / "missing.json"))
    assert result.exit_code == 1 and "file not found" in result.output
    config = example()
    config["routers"][0]["backends"][0]["wieght"] = 2
    result = run("config", "migrate", str(write(tmp_path, config)))
    assert result.exit_code == 1
    assert (
        "routers[0].backends[0].wieght: unknown field in the seed config.json format"
        in result.output
    )
    assert result.stdout == ""


def test_migrate_refuses_a_document_nested_too_deeply(tmp_path: Path) -> None:
    deep = tmp_path / "config.json"
    deep.write_text('{"routers": ' + "[" * 5000 + "]" * 5000 + "}")
    result = run("config", "migrate", str(deep))
    assert result.exit_code == 1
    assert f"{deep}: (top level): the document is nested too deeply" in result.output


def test_config_group_lists_migrate() -> None:
    result = run("config", "--help")
    assert result.exit_code == 0
    assert "migrate" in result.output


def test_serve_overrides_keep_warnings_and_env_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = load_config(EXAMPLE_PATH)
    overridden = apply_overrides(loaded, ServeOptions(port=0, admin="off"))
    assert overridden.config.listeners[0].port == 0
    assert overridden.warnings == loaded.warnings and loaded.warnings
    monkeypatch.setenv("SEED_TEST_SECRET", "e" * 40)
    text = EXAMPLE_PATH.read_text().replace(example()["jwt"]["secret"], "${SEED_TEST_SECRET}")
    from_env = load_config_text(text, "seed.json")
    assert "e" * 40 in from_env.env_values  # redacted by the admin config view
    assert apply_overrides(from_env, ServeOptions(port=0)).env_values == from_env.env_values
