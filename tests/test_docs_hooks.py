"""Docs that cannot rot: every hook is documented, in the reference and the guide, and tested.

"Tested" means: some test file (tests/**/test_*.py or plugins/*/tests/**/test_*.py) defines an
in-test plugin that implements the hook (a function or method of that name decorated with
`hookimpl`) and so exercises it through a real gateway, admin listener or CLI run.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from kairos_core import hookspecs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

from kairos_docgen.hooks_ref import hook_docs, hook_functions, hooks_page

ROOT = Path(__file__).resolve().parents[1]
HOOKS = [fn.__name__ for fn in hook_functions(hookspecs)]


def _hookimpl_names(tree: ast.AST) -> list[str]:
    """Functions decorated with `hookimpl` in `tree`, and in plugin source held in strings."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and any(
            (isinstance(d, ast.Name) and d.id == "hookimpl")
            or (isinstance(d, ast.Attribute) and d.attr == "hookimpl")
            for d in node.decorator_list
        ):
            names.append(node.name)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and "@hookimpl" in node.value
        ):
            try:
                names += _hookimpl_names(ast.parse(node.value))
            except SyntaxError:
                continue  # a message that mentions @hookimpl, not plugin source
    return names


def implemented_in_tests() -> dict[str, list[str]]:
    """Hook name -> test files that implement it with `@hookimpl`."""
    files = [*ROOT.glob("tests/**/test_*.py"), *ROOT.glob("plugins/*/tests/**/test_*.py")]
    found: dict[str, list[str]] = {}
    for path in files:
        for name in _hookimpl_names(ast.parse(path.read_text(encoding="utf-8"))):
            found.setdefault(name, []).append(str(path.relative_to(ROOT)))
    return found


def test_the_hook_list_is_not_empty():
    assert "register_filters" in HOOKS
    assert len(HOOKS) == len(set(HOOKS)) >= 12


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_one_line_docstring(hook):
    doc = (getattr(hookspecs, hook).__doc__ or "").strip()
    assert doc, f"hook {hook} has no docstring"
    assert "\n" not in doc, f"hook {hook}: keep the docstring to one line"


@pytest.mark.parametrize("doc", hook_docs(), ids=lambda d: d.name)
def test_hook_is_in_the_generated_reference(doc):
    page = hooks_page()
    assert f"### `{doc.name}` {{#{doc.name}}}" in page
    assert doc.signature in page
    assert doc.docstring in page


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_in_the_authoring_guide(hook):
    guide = (ROOT / "docs" / "plugins" / "authoring.md").read_text(encoding="utf-8")
    assert f"`{hook}(" in guide, f"docs/plugins/authoring.md does not mention {hook}"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_exercised_by_a_test(hook):
    found = implemented_in_tests()
    assert hook in found, f"no test implements {hook} with @hookimpl (see this module's docstring)"
