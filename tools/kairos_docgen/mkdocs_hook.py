"""mkdocs hook (see `hooks:` in mkdocs.yml): add the generated reference pages to every build."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kairos_docgen import generate_pages
from kairos_docgen.readme import include_readme_blocks

_ROOT = Path(__file__).resolve().parents[2]


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Generate the reference pages from the code and add them to the site."""
    for uri, text in generate_pages(Path(config.docs_dir)).items():
        files.append(File.generated(config, uri, content=text))
    return files


def on_page_markdown(markdown: str, page: Any, config: MkDocsConfig, files: Files) -> str:
    """Quote README blocks where a page says `<!-- readme:NAME -->`."""
    return include_readme_blocks(markdown, _ROOT / "README.md")
