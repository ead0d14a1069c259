"""kairos_core.compiled: which modules run compiled, and which are older than their source."""

from __future__ import annotations

import logging
import os
import sys
import sysconfig
import types
from pathlib import Path

import pytest

from kairos_core.compiled import compiled_modules, stale_modules
from kairos_core.process import report_compiled

SUFFIX = sysconfig.get_config_var("EXT_SUFFIX")


@pytest.fixture
def fake_compiled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A module `kairos_fake.hot` whose file is an extension next to its `.py` source."""
    source = tmp_path / "hot.py"
    built = tmp_path / f"hot{SUFFIX}"
    source.write_text("x = 1\n")
    built.write_bytes(b"not really an extension")
    module = types.ModuleType("kairos_fake.hot")
    module.__file__ = str(built)
    monkeypatch.setitem(sys.modules, "kairos_fake.hot", module)
    return source, built


def test_a_loaded_extension_module_counts_as_compiled(fake_compiled: tuple[Path, Path]) -> None:
    _, built = fake_compiled
    assert compiled_modules()["kairos_fake.hot"] == built


def test_other_packages_and_pure_modules_do_not_count(fake_compiled: tuple[Path, Path]) -> None:
    found = compiled_modules()
    assert "kairos_core.gateway" not in found  # imported, but from its .py file
    assert all(name.startswith("kairos_") for name in found)


def test_a_compiled_module_older_than_its_source_is_stale(
    fake_compiled: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    source, built = fake_compiled
    os.utime(built, (1_000_000, 1_000_000))
    os.utime(source, (2_000_000, 2_000_000))
    assert "kairos_fake.hot" in stale_modules()
    with caplog.at_level(logging.INFO, logger="kairos"):
        report_compiled()
    assert "modules compiled with mypyc" in caplog.text
    assert "older than their source" in caplog.text
    assert "kairos_fake.hot" in caplog.text


def test_a_fresh_compiled_module_is_not_stale(
    fake_compiled: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    source, built = fake_compiled
    os.utime(source, (1_000_000, 1_000_000))
    os.utime(built, (2_000_000, 2_000_000))
    assert "kairos_fake.hot" not in stale_modules()
    with caplog.at_level(logging.INFO, logger="kairos"):
        report_compiled()
    assert "older than their source" not in caplog.text
