"""Shared test setup: the kairos pytest plugin (fixtures) is registered by its entry point.

This file adds `install_distribution`, used by the tests of documented and scaffolded plugins:
it builds a plugin's wheel with hatchling (the build backend its pyproject names) and unpacks
it into a fresh directory that subprocesses get on `PYTHONPATH`. That is what pip does with a
pure-Python wheel, without touching the environment the tests run in.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from kairos_core.testing import require_service


def _build_wheel(project: Path, out: Path) -> Path:
    """Build `project`'s wheel into `out` through hatchling's PEP 517 hook."""
    code = "import sys, hatchling.build as b; print(b.build_wheel(sys.argv[1]))"
    done = subprocess.run(
        [sys.executable, "-c", code, str(out)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"building {project.name} failed:\n{done.stderr}"
    return out / done.stdout.strip().splitlines()[-1]


@dataclass(frozen=True)
class InstalledSite:
    """A directory holding unpacked wheels, and how to run `kairos` with it importable."""

    path: Path

    def env(self, **extra: str) -> dict[str, str]:
        """Variables for a subprocess: the current environment with this site first on PYTHONPATH."""
        paths = [str(self.path), *filter(None, [os.environ.get("PYTHONPATH")])]
        return {"PYTHONPATH": os.pathsep.join(paths), **extra}

    def kairos(self, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        """Run `kairos ARGS` (as `python -m kairos_cli`) in a subprocess that sees this site."""
        return subprocess.run(
            [sys.executable, "-m", "kairos_cli", *args],
            env={**os.environ, **self.env(**extra_env)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


@pytest.fixture
def install_distribution(tmp_path: Path) -> Callable[[Path], InstalledSite]:
    """`site = install_distribution(project_dir)`: build its wheel and unpack it into a new site."""
    require_service(
        "hatchling (to build plugin wheels)",
        importlib.util.find_spec("hatchling") is not None,
        "pip install hatchling",
    )
    counter = iter(range(1000))

    def install(project: Path) -> InstalledSite:
        number = next(counter)
        out = tmp_path / f"wheels-{number}"
        site = tmp_path / f"site-{number}"
        out.mkdir()
        wheel = _build_wheel(project, out)
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(site)
        return InstalledSite(site)

    return install


@pytest.fixture
async def dying_backend() -> AsyncIterator[str]:
    """URL of a backend that promises 1,000 body bytes, sends 100, then resets the connection."""

    async def half(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"a" * 100)
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.transport.abort()

    server = await asyncio.start_server(half, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
def compile_tool() -> ModuleType:
    """tools/compile_hot_path.py as a module (tools/ is not a package)."""
    path = Path(__file__).resolve().parent.parent / "tools" / "compile_hot_path.py"
    spec = importlib.util.spec_from_file_location("compile_hot_path", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under `nox -s compiled` (KAIROS_EXPECT_COMPILED=1), refuse to test the pure-Python tree."""
    if os.environ.get("KAIROS_EXPECT_COMPILED") != "1":
        return
    import kairos_core.proxy
    import kairos_core.server.handler
    from kairos_core.compiled import compiled_modules

    loaded = compiled_modules()
    if "kairos_core.proxy" not in loaded or "kairos_core.server.handler" not in loaded:
        raise pytest.UsageError(
            f"KAIROS_EXPECT_COMPILED=1 but the hot path is pure Python here "
            f"({kairos_core.proxy.__file__}): run tools/compile_hot_path.py first"
        )
