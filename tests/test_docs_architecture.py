"""docs/architecture.md stays true: its layer table covers every core module, imports obey it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "kairos_core"
PAGE = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")


def layers() -> dict[str, int]:
    """Core module (dotted, under kairos_core) -> its layer number in the page's table."""
    out: dict[str, int] = {}
    for number, cells in re.findall(r"^\| (\d+)\. [^|]+\| ([^|]+) \|", PAGE, re.M):
        for ref in re.findall(r"`([\w/]+(?:\.py|/))`", cells):
            if ref.startswith("kairos_cli") or ref.startswith("kairos_core/testing"):
                continue
            paths = sorted((CORE / ref).rglob("*.py")) if ref.endswith("/") else [CORE / ref]
            for path in paths:
                out[_module(path)] = int(number)
    return out


def _module(path: Path) -> str:
    parts = path.relative_to(CORE).with_suffix("").parts
    return ".".join(p for p in parts if p != "__init__")


def core_modules() -> list[str]:
    """Every module of kairos_core except the package faces and the testing helpers."""
    return sorted(
        _module(p)
        for p in CORE.rglob("*.py")
        if p.name != "__init__.py" and "testing" not in p.relative_to(CORE).parts
    )


def runtime_imports(module: str) -> set[str]:
    """Core modules `module` imports at import time (not under TYPE_CHECKING, not in functions)."""
    path = CORE / (module.replace(".", "/") + ".py")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for child in ast.walk(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                break
            if isinstance(child, ast.ImportFrom) and (child.module or "").startswith("kairos_core"):
                base = child.module.removeprefix("kairos_core").lstrip(".")
                for alias in child.names:
                    candidate = f"{base}.{alias.name}".lstrip(".")
                    found.add(candidate if candidate in core_modules() else base)
    return {m for m in found if m}


def test_every_core_module_has_a_layer():
    table = layers()
    missing = [m for m in core_modules() if m not in table]
    assert not missing, f"docs/architecture.md layer table does not place: {missing}"


def test_every_file_the_page_names_exists():
    for ref in set(re.findall(r"`([\w/]+\.py)`", PAGE)):
        candidates = [CORE / ref, ROOT / ref, ROOT / "kairos_cli" / ref]
        assert any(c.exists() for c in candidates), f"architecture.md names a missing file: {ref}"


@pytest.mark.parametrize("module", core_modules())
def test_imports_never_run_up_the_layers(module):
    table = layers()
    for dependency in runtime_imports(module):
        if dependency not in table:
            continue  # the package itself (`kairos_core.__version__`), a face, not a layer
        assert table[dependency] <= table[module], (
            f"{module} (layer {table[module]}) imports {dependency} (layer {table[dependency]}); "
            "fix the import or docs/architecture.md"
        )
