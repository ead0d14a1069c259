"""The docs' YAML examples for `cors` load and run in a real gateway."""

from __future__ import annotations

import re
from pathlib import Path

import kairos_cors
import yaml

DOC = Path(__file__).resolve().parents[3] / "docs" / "plugins" / "cors.md"


async def test_doc_examples_start_a_gateway(kairos_gateway) -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
    assert blocks
    for block in blocks:
        config = yaml.safe_load(block)
        assert "cors" in block
        await kairos_gateway(config, plugins=[kairos_cors])
