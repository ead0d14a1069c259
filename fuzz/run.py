"""Run every atheris target (or those named) for a bounded time; crashes land in fuzz/regressions/."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
TARGETS = sorted(p.stem.removeprefix("fuzz_") for p in HERE.glob("fuzz_*.py"))


def run(target: str, seconds: int) -> tuple[bool, str]:
    """Fuzz one target from its seed corpus; return (clean, summary line)."""
    seeds = HERE / "corpus" / target
    crashes = HERE / "regressions" / target
    crashes.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"kairos-fuzz-{target}-") as work:
        command = [
            sys.executable,
            str(HERE / "_atheris.py"),
            target,
            work,  # new inputs go to the first corpus directory: keep the seeds untouched
            str(seeds),
            f"-max_total_time={seconds}",
            f"-artifact_prefix={crashes}/",
            "-timeout=10",
            "-rss_limit_mb=2048",
            "-max_len=4096",
            "-print_final_stats=1",
        ]
        started = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        elapsed = time.monotonic() - started
        corpus = len(os.listdir(work))
    output = done.stdout + done.stderr
    runs = re.search(r"stat::number_of_executed_units:\s*(\d+)", output)
    speed = re.search(r"stat::average_exec_per_sec:\s*(\d+)", output)
    summary = (
        f"{target}: {elapsed:.0f} s, {runs.group(1) if runs else '?'} runs, "
        f"{speed.group(1) if speed else '?'} exec/s, {corpus} new corpus inputs, "
        f"exit {done.returncode}"
    )
    if done.returncode != 0:
        print(output[-4000:], file=sys.stderr)
    return done.returncode == 0, summary


def main(argv: list[str]) -> int:
    """`run.py [seconds] [target ...]`; seconds default to $KAIROS_FUZZ_SECONDS or 60."""
    seconds = int(os.environ.get("KAIROS_FUZZ_SECONDS", "60"))
    if argv and argv[0].isdigit():
        seconds, argv = int(argv[0]), argv[1:]
    unknown = set(argv) - set(TARGETS)
    if unknown:
        print(f"unknown targets {sorted(unknown)}; known: {TARGETS}", file=sys.stderr)
        return 2
    results = [run(target, seconds) for target in (argv or TARGETS)]
    for _, summary in results:
        print(summary)
    return 0 if all(clean for clean, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
