"""The docs' YAML examples for `otel` load and start a real gateway."""

from __future__ import annotations

import re
from pathlib import Path

import kairos_otel
import pytest

from kairos_core.config import load_config_text

ROOT = Path(__file__).resolve().parents[3]
PAGES = [ROOT / "docs" / "plugins" / "otel.md", ROOT / "plugins" / "kairos-otel" / "README.md"]


@pytest.mark.parametrize(("name", "text"), [(p.name, p.read_text()) for p in PAGES])
async def test_doc_examples_start_a_gateway(
    kairos_gateway, monkeypatch, name: str, text: str
) -> None:
    monkeypatch.setenv("OTEL_API_KEY", "doc-example-key")
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    assert blocks
    for block in blocks:
        assert "name: otel" in block
        config = block if "routes:" in block else block + "routes: []\n"
        loaded = load_config_text(config, name)
        await kairos_gateway(loaded, plugins=[kairos_otel])


def test_every_option_is_documented() -> None:
    text = PAGES[0].read_text()
    for name in kairos_otel.OtelConfig.model_fields:
        assert f"| `{name}` |" in text, name
