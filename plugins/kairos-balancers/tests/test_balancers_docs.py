"""docs/plugins/balancers.md cannot rot: every balancer and option is documented, every example
config validates with `kairos validate`, and the error shown is the one users get."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from kairos_balancers import PLUGINS

from kairos_cli.main import cli

DOC = Path(__file__).resolve().parents[3] / "docs" / "plugins" / "balancers.md"


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def test_every_balancer_and_option_is_documented(doc) -> None:
    for plugin in PLUGINS:
        assert f"## `{plugin.name}`" in doc
        for field in plugin.config_model.model_fields:
            assert f"| `{field}` |" in doc, f"{plugin.name}.{field} has no row in the docs"


def test_every_example_config_validates(doc, tmp_path) -> None:
    examples = re.findall(r"```yaml\n(.*?)```", doc, re.S)
    assert len(examples) >= 6
    for number, example in enumerate(examples):
        path = tmp_path / f"example{number}.yaml"
        path.write_text(example, encoding="utf-8")
        result = CliRunner().invoke(cli, ["validate", str(path)])
        assert result.exit_code == 0, f"example {number}:\n{example}\n{result.output}"


def test_documented_error_is_the_real_one(doc, tmp_path) -> None:
    (shown,) = re.findall(r"```text\ngateway\.yaml:(.*?)\n```", doc, re.S)
    path = tmp_path / "gateway.yaml"
    path.write_text(
        "upstreams:\n"
        "  users:\n"
        "    balancer:\n"
        "      name: consistent_hash\n"
        "      config: {key: header}\n"
        "    backends:\n"
        "      - url: http://127.0.0.1:9001\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code != 0
    assert f"{path}:{shown}" in result.output
