"""Which Kairos modules run compiled (mypyc, `tools/compile_hot_path.py`), and which are stale."""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

_PACKAGES = ("kairos_",)
"""Module name prefixes of the core and the plugins shipped in this repository."""
_SUFFIX = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
"""The file ending of this interpreter's C extensions."""


def compiled_modules() -> dict[str, Path]:
    """Loaded Kairos modules that are C extensions, by name."""
    found: dict[str, Path] = {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if name.startswith(_PACKAGES) and isinstance(path, str) and path.endswith(_SUFFIX):
            found[name] = Path(path)
    return found


def stale_modules() -> list[str]:
    """Compiled modules whose `.py` source changed after they were compiled."""
    stale = []
    for name, path in compiled_modules().items():
        source = path.with_name(path.name.removesuffix(_SUFFIX) + ".py")
        if source.exists() and source.stat().st_mtime > path.stat().st_mtime:
            stale.append(name)
    return sorted(stale)
