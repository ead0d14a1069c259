"""tools/compile_hot_path.py: what `--clean` removes (compiling itself runs in `nox -s compiled`)."""

from __future__ import annotations

import sysconfig
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
SUFFIX = sysconfig.get_config_var("EXT_SUFFIX")


def make(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_clean_removes_every_compiled_module_and_keeps_the_sources(
    tmp_path: Path, compile_tool: ModuleType
) -> None:
    tool = compile_tool
    listed = make(tmp_path / f"kairos_core/proxy{SUFFIX}")
    unlisted = make(tmp_path / f"kairos_core/upstream/pool{SUFFIX}")  # compiled by an older run
    shared = make(tmp_path / f"0123abcd__mypyc{SUFFIX}")
    plugin = make(tmp_path / f"plugins/kairos-jwt/kairos_jwt/cache{SUFFIX}")
    sources = [
        make(tmp_path / "kairos_core/proxy.py"),
        make(tmp_path / "kairos_core/upstream/pool.py"),
        make(tmp_path / "plugins/kairos-jwt/kairos_jwt/cache.py"),
    ]
    foreign = make(tmp_path / f"kairos_core/vendored{SUFFIX}")  # no .py beside it: not ours
    assert tool.clean(tmp_path) == 0
    for path in (listed, unlisted, shared, plugin):
        assert not path.exists()
    assert all(source.exists() for source in sources)
    assert foreign.exists()


def test_every_listed_module_exists(compile_tool: ModuleType) -> None:
    for dist, modules in compile_tool.HOT_PATH.items():
        for module in modules:
            assert (ROOT / dist / module).is_file(), f"{dist}/{module}"


def test_listed_modules_hold_nothing_mypyc_gets_wrong(compile_tool: ModuleType) -> None:
    for dist, modules in compile_tool.HOT_PATH.items():
        for module in modules:
            assert compile_tool.mypyc_hazards(ROOT / dist / module) == []


def test_hazards_are_found(tmp_path: Path, compile_tool: ModuleType) -> None:
    source = make(
        tmp_path / "hazards.py",
        "async def chunks():\n"
        "    yield b''\n"
        "\n"
        "async def send(writer):\n"
        "    try:\n"
        "        pass\n"
        "    finally:\n"
        "        await writer.drain()\n"
        "\n"
        "async def retry(fetch):\n"
        "    try:\n"
        "        return fetch()\n"
        "    except OSError:\n"
        "        return await fetch()\n"
        "\n"
        "async def fine():\n"
        "    def inner():\n"
        "        yield 1\n"
        "    return list(inner())\n",
    )
    assert compile_tool.mypyc_hazards(source) == [
        f"{source}:1: async generator chunks",
        f"{source}:8: await in a finally block",
        f"{source}:13: await in an except block",
    ]
