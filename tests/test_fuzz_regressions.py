"""Every saved fuzz input (crashes found and fixed, plus seeds) replays cleanly through its target."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

FUZZ = Path(__file__).parent.parent / "fuzz"
CASES = sorted(
    p for kind in ("regressions", "corpus") for p in (FUZZ / kind).glob("*/*") if p.is_file()
)
TARGETS = sorted(p.stem.removeprefix("fuzz_") for p in FUZZ.glob("fuzz_*.py"))


def load_target(name: str) -> Callable[[bytes], None]:
    """The target's `test_one_input`, imported from fuzz/ without atheris."""
    module = f"fuzz_{name}"
    if module not in sys.modules:
        if name in ("dns", "ftp", "jwt"):
            pytest.importorskip(f"kairos_{name}")  # a plugin target needs its plugin installed
        spec = importlib.util.spec_from_file_location(module, FUZZ / f"{module}.py")
        assert spec is not None and spec.loader is not None
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[module] = loaded
        spec.loader.exec_module(loaded)
    test_one_input: Callable[[bytes], None] = sys.modules[module].test_one_input
    return test_one_input


def test_every_target_has_seeds_and_a_regressions_folder() -> None:
    assert set(TARGETS) == {"config", "router", "headers", "dns", "ftp", "jwt"}
    for name in TARGETS:
        assert any((FUZZ / "corpus" / name).iterdir()), name
        assert (FUZZ / "regressions" / name).is_dir(), name


@pytest.mark.parametrize(
    "case", CASES, ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}/{p.name}"
)
def test_saved_input_replays(case: Path) -> None:
    load_target(case.parent.name)(case.read_bytes())
