"""Run a target under atheris (libFuzzer), instrumenting only Kairos code: `_atheris.py <target> ...`."""

from __future__ import annotations

import importlib
import sys

INSTRUMENTED = ["kairos_core", "kairos_dns", "kairos_ftp", "kairos_jwt"]


def main(argv: list[str]) -> None:
    """Import `fuzz_<target>` with Kairos's modules instrumented, then fuzz its test_one_input."""
    import atheris  # only needed on demand: `nox -s fuzz`

    target, libfuzzer_args = argv[1], argv[2:]
    with atheris.instrument_imports(include=INSTRUMENTED):
        module = importlib.import_module(f"fuzz_{target}")
    atheris.Setup([argv[0], *libfuzzer_args], module.test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
