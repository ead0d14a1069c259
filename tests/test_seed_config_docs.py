"""docs/migrating-from-seed.md stays true: every seed field mapped, the example output current."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel
from seed_examples import EXAMPLE_PATH

from kairos_core.config import load_config
from kairos_core.config.seed.models import SeedConfig
from kairos_core.config.seed.render import migrate_file

DOC = (Path(__file__).parents[1] / "docs" / "migrating-from-seed.md").read_text()


def seed_fields(model: type[BaseModel]) -> set[str]:
    """Every field name of the seed format, nested models included."""
    names: set[str] = set()
    for name, info in model.model_fields.items():
        names.add(info.alias or name)
        for arg in _types(info.annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                names |= seed_fields(arg)
    return names


def _types(annotation: object) -> list[object]:
    args = getattr(annotation, "__args__", ())
    return [annotation, *(t for arg in args for t in _types(arg))]


def test_every_seed_field_is_in_the_mapping_table() -> None:
    table = DOC[DOC.index("## Mapping") : DOC.index("### Decisions")]
    missing = sorted(
        f for f in seed_fields(SeedConfig) if f"`{f}" not in table and f".{f}" not in table
    )
    assert not missing, f"seed fields without a row in the mapping table: {missing}"


def test_the_converted_example_in_the_docs_is_current() -> None:
    block = re.search(r"<!-- seed-example:start -->\n```yaml\n(.*?)```", DOC, re.S)
    assert block is not None
    text, _ = migrate_file(EXAMPLE_PATH)
    assert block.group(1) == text[text.index("version: 1") :]


def test_the_example_warnings_in_the_docs_are_current() -> None:
    loaded = load_config(EXAMPLE_PATH, env={})
    shown = [f"warning: {w.replace(str(EXAMPLE_PATH), 'config.json')}" for w in loaded.warnings]
    block = DOC[DOC.rindex("```text\n") + len("```text\n") : DOC.rindex("```")]
    assert block.splitlines() == shown
