"""Compile the request hot path with mypyc, in place; `--clean` goes back to pure Python.

    python tools/compile_hot_path.py            # core, jwt and rate-limit hot-path modules
    python tools/compile_hot_path.py --clean    # remove every compiled module again
    python tools/compile_hot_path.py --copy-to DIR   # a compiled copy of the checkout in DIR

Each listed module gets a C extension beside its `.py` file; Python imports the extension
first, so an editable install (the README's) runs the compiled code at once. The `.py` files
stay the source of truth: after editing one, compile again or `--clean`, or the old compiled
module keeps running (`kairos serve` warns when a compiled module is older than its source).

Needs a C compiler, the Python headers, `mypy` (which ships mypyc) and `setuptools>=77`.
Listed modules hold no async generators (mypyc lacks them: they live in small interpreted
helpers such as `body_stream.py`) and no `await` in a `finally` or `except` block (mypyc gets
the exception state wrong across those awaits); the tool refuses to compile any of these.
`router.py` stays interpreted: mypyc cannot compile its generic dataclasses.
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

HOT_PATH: dict[str, list[str]] = {
    ".": [
        "kairos_core/context.py",
        "kairos_core/forwarding.py",
        "kairos_core/metrics.py",
        "kairos_core/pipeline.py",
        "kairos_core/proxy.py",
        "kairos_core/response.py",
        "kairos_core/resilience/breaker.py",
        "kairos_core/server/handler.py",
        "kairos_core/server/lean_protocol.py",
        "kairos_core/server/lean_request.py",
        "kairos_core/server/writer.py",
        "kairos_core/telemetry/access_log.py",
        "kairos_core/telemetry/core_metrics.py",
        "kairos_core/telemetry/observer.py",
        "kairos_core/telemetry/tracing.py",
        "kairos_core/upstream/lean/body.py",
        "kairos_core/upstream/lean/client.py",
        "kairos_core/upstream/lean/connection.py",
        "kairos_core/upstream/lean/pool.py",
        "kairos_core/upstream/lean/request.py",
        "kairos_core/upstream/lean/response.py",
        "kairos_core/upstream/pool.py",
    ],
    "plugins/kairos-jwt": [
        "kairos_jwt/authenticator.py",
        "kairos_jwt/cache.py",
        "kairos_jwt/sources.py",
        "kairos_jwt/verifier.py",
    ],
    "plugins/kairos-ratelimit": [
        "kairos_ratelimit/algorithms.py",
        "kairos_ratelimit/headers.py",
        "kairos_ratelimit/keys.py",
        "kairos_ratelimit/memory.py",
        "kairos_ratelimit/stage.py",
    ],
}
"""Per distribution root (relative to the repository): the modules to compile."""

_BUILD = """\
import sys
from setuptools import setup
from mypyc.build import mypycify
setup(
    name="kairos-hot-path",
    ext_modules=mypycify(sys.argv[1:], opt_level="3", debug_level="0"),
    script_args=["build_ext", "--build-lib", "out", "--build-temp", "tmp"],
)
"""


def mypyc_hazards(path: Path) -> list[str]:
    """What in `path` mypyc compiles wrongly or not at all: async generators; `await` in a
    `finally` block (the compiled block re-raises any exception a caller is handling); `await`
    in an `except` block (two requests suspended there restore each other's exception state,
    and the caught exception leaks into every later one)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.AsyncFunctionDef) and any(
            isinstance(inner, ast.Yield | ast.YieldFrom) for inner in _own_nodes(node)
        ):
            found.append(f"{path}:{node.lineno}: async generator {node.name}")
        if isinstance(node, ast.Try | ast.TryStar) and _awaits(node.finalbody):
            found.append(f"{path}:{node.finalbody[0].lineno}: await in a finally block")
        if isinstance(node, ast.ExceptHandler) and _awaits(node.body):
            found.append(f"{path}:{node.lineno}: await in an except block")
    return found


def _awaits(statements: list[ast.stmt]) -> bool:
    """Whether `statements` await anything (`await`, `async for`, `async with`)."""
    return any(
        isinstance(inner, ast.Await | ast.AsyncFor | ast.AsyncWith)
        for statement in statements
        for inner in ast.walk(statement)
    )


def _own_nodes(function: ast.AsyncFunctionDef) -> list[ast.AST]:
    """The nodes of `function`'s body, not of functions or classes nested in it."""
    nodes: list[ast.AST] = []
    pending: list[ast.AST] = list(function.body)
    while pending:
        node = pending.pop()
        nodes.append(node)
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            pending.extend(ast.iter_child_nodes(node))
    return nodes


def extension_suffix() -> str:
    """The file ending of a C extension for this interpreter."""
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    assert isinstance(suffix, str)
    return suffix


def compiled_files(root: Path) -> list[Path]:
    """Every compiled module under the distributions (listed now or not: an older run may have
    compiled more), and mypyc's shared libraries. A Kairos package holds no other extension."""
    suffix = extension_suffix()
    found: list[Path] = []
    for dist in HOT_PATH:
        base = root / dist
        found += base.glob(f"*__mypyc{suffix}")
        for package in base.glob("kairos_*/"):
            found += (
                built
                for built in package.rglob(f"*{suffix}")
                if built.with_name(built.name.removesuffix(suffix) + ".py").exists()
            )
    return sorted(found)


def clean(root: Path) -> int:
    """Remove the compiled modules; the `.py` files run again."""
    removed = compiled_files(root)
    for path in removed:
        path.unlink()
    print(f"removed {len(removed)} compiled files")
    return 0


def compile_dist(root: Path, dist: str, modules: list[str]) -> None:
    """Compile one distribution's modules in a scratch directory, then copy them in place."""
    base = root / dist
    sources = [str(base / m) for m in modules]
    with tempfile.TemporaryDirectory(prefix="kairos-mypyc-") as scratch:
        work = Path(scratch)
        (work / "build_hot_path.py").write_text(_BUILD)
        env = {**os.environ, "MYPYPATH": os.pathsep.join([str(root), str(base)])}
        config = ["--config-file", str(root / "pyproject.toml")]  # the project's mypy settings
        subprocess.run(
            [sys.executable, "build_hot_path.py", *config, *sources], cwd=work, env=env, check=True
        )
        out = work / "out"
        for built in out.rglob(f"*{extension_suffix()}"):
            destination = base / built.relative_to(out)
            shutil.copy2(built, destination)
            print(f"compiled {destination.relative_to(root)}")


COPY_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", ".nox", "site", "build", "results", "__pycache__", f"*{extension_suffix()}"
)
"""What a compiled copy leaves out: history, environments, outputs and old builds."""


def main() -> int:
    """Compile (or clean) the hot path of this checkout, or of a fresh copy of it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean", action="store_true", help="remove the compiled modules")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to work on")
    parser.add_argument("--copy-to", type=Path, help="copy the checkout here, compile the copy")
    args = parser.parse_args()
    root: Path = args.root.resolve()
    if args.copy_to is not None:
        shutil.rmtree(args.copy_to, ignore_errors=True)
        shutil.copytree(root, args.copy_to, ignore=COPY_IGNORE)
        root = args.copy_to.resolve()
    clean(root)
    if args.clean:
        return 0
    hazards = [h for d, ms in HOT_PATH.items() for m in ms for h in mypyc_hazards(root / d / m)]
    if hazards:
        print("not compiling: mypyc would get these wrong\n" + "\n".join(hazards), file=sys.stderr)
        return 1
    for dist, modules in HOT_PATH.items():
        compile_dist(root, dist, modules)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
