"""The docs' YAML examples for `transform` load and run in a real gateway."""

from __future__ import annotations

import re
from pathlib import Path

import kairos_transform
import yaml

DOC = Path(__file__).resolve().parents[3] / "docs" / "plugins" / "transform.md"


async def test_doc_examples_load(kairos_gateway, echo_backend, http, identity) -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
    full = [yaml.safe_load(b) for b in blocks if b.startswith("routes:")]
    entries = [yaml.safe_load(b) for b in blocks if b.startswith("- name: transform")]
    assert full
    assert entries
    for config in full:
        for route in config["routes"]:
            route["upstream"] = {"backends": [{"url": echo_backend.url}]}
            for entry in route["plugins"]:
                if entry["name"] == "jwt":  # the real JWT plugin is a separate distribution
                    entry["name"] = "test-identity"
        await kairos_gateway(config, plugins=[kairos_transform, identity])
    for entry in entries:
        route = {"prefix": "/", "upstream": {"backends": [{"url": echo_backend.url}]}}
        gw = await kairos_gateway(
            {"routes": [{**route, "plugins": entry}]}, plugins=[kairos_transform]
        )
        async with http.get(gw.url + "/v1/x") as response:
            assert response.status == 200
        assert echo_backend.records[-1].path == "/v2/x"
