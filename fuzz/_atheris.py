"""Run a target under atheris (libFuzzer) with all loaded Python code instrumented."""

from __future__ import annotations

import sys
from collections.abc import Callable


def fuzz(test_one_input: Callable[[bytes], None]) -> None:
    """Instrument what is imported so far and fuzz `test_one_input` with the CLI's arguments."""
    import atheris  # only needed on demand: `nox -s fuzz`

    atheris.instrument_all()
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
