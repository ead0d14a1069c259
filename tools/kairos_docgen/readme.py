"""Commands quoted from README.md, so the docs never contradict the README's quickstart."""

from __future__ import annotations

import re
from pathlib import Path

MARKER_RE = re.compile(r"<!-- readme:(?P<name>[\w:-]+) -->")


def readme_block(readme: Path, name: str) -> str:
    """The fenced block that follows `<!-- NAME -->` in the README (as `.ci/check-quickstart` reads it)."""
    text = readme.read_text(encoding="utf-8")
    marker = f"<!-- {name} -->"
    start = text.find(marker)
    if start < 0:
        raise ValueError(f"{readme} has no {marker} marker")
    match = re.search(r"^```[^\n]*\n.*?^```$", text[start:], re.S | re.M)
    if match is None:
        raise ValueError(f"{readme}: no fenced block after {marker}")
    return match.group(0)


def include_readme_blocks(markdown: str, readme: Path) -> str:
    """Replace every `<!-- readme:NAME -->` in a page with the README's block after NAME."""
    return MARKER_RE.sub(lambda m: readme_block(readme, m["name"]), markdown)
