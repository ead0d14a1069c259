"""The docs' YAML examples for `ip-filter` load and run in a real gateway."""

from __future__ import annotations

import re
from pathlib import Path

import kairos_ipfilter
import yaml

DOC = Path(__file__).resolve().parents[3] / "docs" / "plugins" / "ip-filter.md"


async def test_doc_examples_start_a_gateway(kairos_gateway) -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
    assert blocks
    for block in blocks:
        config = yaml.safe_load(block)
        assert "ip-filter" in block
        await kairos_gateway(config, plugins=[kairos_ipfilter])
