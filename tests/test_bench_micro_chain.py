"""`bench/micro_chain.py --instructions`: the counted run serves the real chain, the table's arithmetic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import micro_chain

BENCH = Path(micro_chain.__file__).parent


def test_counted_run_serves_every_request_through_the_full_chain() -> None:
    """What callgrind counts is real work: the full chain answers 200 to each request (or it exits 1)."""
    done = subprocess.run(
        [sys.executable, str(BENCH / "micro_chain.py"), "--serve-counted", "full", "--count", "50"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_counted_run_refuses_an_unknown_variant() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / "micro_chain.py"), "--serve-counted", "nothing"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "'nothing': not one of bare" in done.stderr


def test_instruction_table_gives_each_variant_over_bare_and_the_sum_of_the_stages() -> None:
    counts = {"bare": 100_000, "jwt": 130_000, "rate-limit": 125_000, "full": 160_000}
    table = micro_chain.instruction_table(counts, 1000)
    assert "| bare | 100,000 |  |" in table
    assert "| jwt | 130,000 | +30,000 |" in table
    assert "| full | 160,000 | +60,000 |" in table
    assert table.endswith("Sum of the single stages over bare: +55,000")
