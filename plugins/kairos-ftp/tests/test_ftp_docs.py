"""docs/plugins/ftp.md documents every option, and its YAML examples are valid configs."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner
from kairos_ftp import BridgeSettings, FtpListenerSettings, GatewayTLS
from pydantic import BaseModel

from kairos_cli.main import cli

DOC = Path(__file__).resolve().parents[3] / "docs" / "plugins" / "ftp.md"


def _options(model: type[BaseModel], prefix: str = "") -> list[str]:
    return [f"{prefix}{name}" for name in model.model_fields]


def test_every_option_is_documented() -> None:
    text = DOC.read_text()
    names = _options(FtpListenerSettings) + _options(GatewayTLS, "tls.") + _options(BridgeSettings)
    rows = "\n".join(line for line in text.splitlines() if line.startswith("| `"))
    missing = [name for name in names if f"`{name}`" not in rows]
    assert not missing, f"undocumented options: {missing}"


def test_yaml_examples_are_valid(tmp_path: Path) -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) >= 3
    for index, block in enumerate(blocks):
        path = tmp_path / f"example-{index}.yaml"
        path.write_text(block)
        result = CliRunner().invoke(cli, ["validate", str(path)])  # loads kairos-ftp by name
        assert result.exit_code == 0, f"example {index}:\n{block}\n{result.output}"
