"""Sessions: the whole suite, each plugin alone, lint and docs (default); slow and bench on demand."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests", "plugin", "compiled", "lint", "docs"]
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).parent
PLUGINS = sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").exists())
PYTHON = "3.11"
CI_PYTEST = ["-ra", "--timeout=120", "-p", "no:cacheprovider"]
DOCS_DEPS = ["mkdocs>=1.6,<2", "mkdocs-material>=9.5,<10", "mkdocs-awesome-nav>=3,<4"]


def _install_everything(session: nox.Session) -> None:
    # hatchling: tests build the wheels of the documented and scaffolded example plugins
    session.install("-e", ".[testing]", *(f"-e./plugins/{p}[test]" for p in PLUGINS), "hatchling")


def _install_test_tools(session: nox.Session) -> None:
    session.install("kosoku")  # Autobahn WebSocket conformance runner
    session.install("schemathesis>=4.32,<5")  # tests/test_admin_schemathesis.py runs its CLI


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole suite: core tests and every plugin's tests, all plugins installed together."""
    _install_everything(session)
    _install_test_tools(session)
    paths = ["tests", *(f"plugins/{p}/tests" for p in PLUGINS)]
    session.run("pytest", *CI_PYTEST, "-m", "not slow", *paths, *session.posargs)


@nox.session(python=PYTHON)
@nox.parametrize("plugin", PLUGINS)
def plugin(session: nox.Session, plugin: str) -> None:
    """One plugin installed alone with the core: proves its dependencies are declared."""
    session.install("-e", ".[testing]", f"./plugins/{plugin}[test]")
    session.run("pytest", *CI_PYTEST, "-m", "not slow", f"plugins/{plugin}/tests", *session.posargs)


def _compiler_missing(session: nox.Session) -> str | None:
    """What mypyc lacks on this machine (a C compiler, the Python headers), or None."""
    if not any(shutil.which(cc) for cc in ("cc", "gcc", "clang")):
        return "no C compiler on PATH"
    check = "import os, sysconfig; print(os.path.exists(sysconfig.get_paths()['include'] + '/Python.h'))"
    if session.run("python", "-c", check, silent=True).strip() != "True":  # type: ignore[union-attr]
        return "no Python headers (Python.h)"
    return None


@nox.session(python=PYTHON)
def compiled(session: nox.Session) -> None:
    """The hot path compiled with mypyc, in a copy of the checkout: the whole suite runs against
    the compiled modules (runtime type checks, no monkeypatching, no weak references)."""
    missing = _compiler_missing(session)
    if missing:
        if os.environ.get("KAIROS_REQUIRE_SERVICES") == "1":
            session.error(f"{missing}: the compiled session cannot run (CI requires it)")
        session.skip(f"{missing}: the compiled hot path is not tested here")
    copy = Path(session.create_tmp()) / "compiled-tree"
    _install_everything(session)  # mypyc type-checks against the dependencies
    session.install("mypy", "setuptools>=77")
    session.run("python", "tools/compile_hot_path.py", "--copy-to", str(copy))
    session.install(
        "-e", f"{copy}[testing]", *(f"-e{copy}/plugins/{p}[test]" for p in PLUGINS), "hatchling"
    )
    _install_test_tools(session)
    session.chdir(copy)
    paths = ["tests", *(f"plugins/{p}/tests" for p in PLUGINS)]
    env = {"KAIROS_EXPECT_COMPILED": "1"}
    session.run("pytest", *CI_PYTEST, "-m", "not slow", *paths, *session.posargs, env=env)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff (lint and format) and mypy over the core, the CLI and the plugins."""
    session.install("ruff", "mypy", "types-PyYAML", *DOCS_DEPS)
    _install_everything(session)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run(
        "mypy",
        "kairos_core",
        "kairos_cli",
        *(f"plugins/{p}/{p.replace('-', '_')}" for p in PLUGINS),
        "tools/kairos_docgen",
        "tools/compile_hot_path.py",
        "docs/examples/kairos-example-auth/kairos_example_auth",
        "fuzz",
    )


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """mkdocs build --strict: reference pages generated from the code, every link checked."""
    _install_everything(session)
    session.install(*DOCS_DEPS)
    env = {"NO_MKDOCS_2_WARNING": "1"}
    session.run(
        "mkdocs", "build", "--strict", "--site-dir", f"{session.create_tmp()}/site", env=env
    )


@nox.session(python=PYTHON, default=False)
def slow(session: nox.Session) -> None:
    """Long tests excluded from CI: 1 GiB transfers, soaks, slow conformance cases."""
    _install_everything(session)
    session.install("kosoku")
    paths = ["tests", *(f"plugins/{p}/tests" for p in PLUGINS)]
    env = {"KAIROS_BIG_TRANSFER": os.environ.get("KAIROS_BIG_TRANSFER", str(1024**3))}
    session.run("pytest", "-ra", "-m", "slow", *paths, *session.posargs, env=env)


@nox.session(python=PYTHON, default=False)
def bench(session: nox.Session) -> None:
    """Kairos beside nginx and a minimal aiohttp proxy, plus microbenchmarks (`-- --smoke`,
    `-- --compiled` to add a mypyc-compiled copy to the same run)."""
    _install_everything(session)
    session.install("mypy", "setuptools>=77")  # for --compiled
    session.run("python", "bench/run.py", *session.posargs)


@nox.session(python=PYTHON, default=False)
def bench_memory(session: nox.Session) -> None:
    """Idle PSS per additional worker and of 10,000 idle client connections, beside aiohttp."""
    _install_everything(session)
    session.run("python", "bench/memory.py", *session.posargs)


@nox.session(python=PYTHON, default=False)
def bench_ftp(session: nox.Session) -> None:
    """FTP throughput: 1 GiB through the gateway beside direct, pinned (`-- --placement none`)."""
    _install_everything(session)
    script = "plugins/kairos-ftp/bench/bench_ftp_throughput.py"
    session.run("python", script, "--size", "1GiB", "--reps", "15", *session.posargs)


@nox.session(python=PYTHON, default=False)
def soak(session: nox.Session) -> None:
    """10 minutes of mixed load, reloads every 15 s and flapping backends (`-- --duration 60`)."""
    _install_everything(session)
    session.run("python", "bench/soak.py", *session.posargs)


@nox.session(python=PYTHON, default=False)
def fuzz(session: nox.Session) -> None:
    """Atheris targets in fuzz/, 60 s each (`-- 300 dns jwt`, or KAIROS_FUZZ_SECONDS); crashes saved."""
    _install_everything(session)
    session.install("atheris")
    session.run("python", "fuzz/run.py", *session.posargs)
