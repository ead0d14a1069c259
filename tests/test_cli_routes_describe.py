"""`kairos routes test` shows what a describing balancer would do with a sample request."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kairos_cli.main import cli
from kairos_core import (
    Backend,
    BalancerPlugin,
    NoConfig,
    RequestContext,
    UpstreamPool,
    builtin,
    hookimpl,
)

CONFIG = """
routes:
  - name: described
    prefix: /
    upstream:
      balancer: describing
      backends: [{url: "http://127.0.0.1:9001", name: one}]
"""


class Describing:
    """Picks the first backend; `describe` echoes the sample (awaitable when live)."""

    def __init__(self) -> None:
        self.closed = False

    def pick(self, ctx: RequestContext | None, candidates: Sequence[Backend]) -> Backend | None:
        return candidates[0]

    def describe(self, sample: dict[str, Any], live: bool) -> Any:
        echoed = {**sample, "body": sample["body"].decode(), "live": live}
        if not live:
            return echoed

        async def asked() -> dict[str, Any]:
            return {**echoed, "asked": True}

        return asked()

    async def close(self) -> None:
        self.closed = True


class DescribingPlugin:
    """Registers the `describing` balancer."""

    def __init__(self) -> None:
        self.built: list[Describing] = []

    @hookimpl
    def register_balancers(self, register: Callable[[BalancerPlugin[Any]], None]) -> None:
        def build(config: NoConfig, pool: UpstreamPool) -> Describing:
            self.built.append(Describing())
            return self.built[-1]

        register(BalancerPlugin(name="describing", build=build))


@pytest.fixture
def describing(monkeypatch: pytest.MonkeyPatch) -> DescribingPlugin:
    plugin = DescribingPlugin()
    monkeypatch.setattr(builtin, "PLUGINS", (*builtin.PLUGINS, plugin))
    return plugin


def test_describe_gets_the_sample_request(tmp_path: Path, describing: DescribingPlugin) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(CONFIG)
    args = ["routes", "test", str(path), "post", "/orders?page=2", "-H", "X-Tenant: acme"]
    result = CliRunner().invoke(cli, [*args, "--body", '{"sku": 1}', "--json"])
    assert result.exit_code == 0, result.output
    described = json.loads(result.output)["balancer"]
    assert described["method"] == "POST"
    assert described["path"] == "/orders"
    assert described["query"] == "page=2"
    assert ["X-Tenant", "acme"] in described["headers"]
    assert described["body"] == '{"sku": 1}'
    assert described["live"] is False
    assert describing.built[-1].closed is False


def test_live_describe_is_awaited_and_body_read_from_file(
    tmp_path: Path, describing: DescribingPlugin
) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(CONFIG)
    (tmp_path / "body.json").write_bytes(b'{"from": "file"}')
    body = f"@{tmp_path / 'body.json'}"
    result = CliRunner().invoke(
        cli, ["routes", "test", str(path), "GET", "/x", "--body", body, "--ask-model"]
    )
    assert result.exit_code == 0, result.output
    assert "balancer:" in result.output
    assert '"asked": true' in result.output
    assert '"body": "{\\"from\\": \\"file\\"}"' in result.output
    assert describing.built[-1].closed is True


def test_missing_body_file_is_a_clear_error(tmp_path: Path, describing: DescribingPlugin) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(CONFIG)
    result = CliRunner().invoke(
        cli, ["routes", "test", str(path), "GET", "/x", "--body", "@/nonexistent/body"]
    )
    assert result.exit_code == 2
    assert "--body" in result.output
    assert "No such file" in result.output


def test_balancers_without_describe_are_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(CONFIG.replace("balancer: describing\n      ", ""))
    result = CliRunner().invoke(cli, ["routes", "test", str(path), "GET", "/x", "--json"])
    assert result.exit_code == 0, result.output
    assert "balancer" not in json.loads(result.output)
