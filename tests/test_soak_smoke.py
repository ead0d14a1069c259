"""The soak script end to end in 20 s (`nox -s slow`): every check it makes must pass."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "soak.py"


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_short_soak_passes(tmp_path: Path) -> None:
    command = [sys.executable, str(SCRIPT), "--duration", "20", "--warmup", "8"]
    command += ["--reload-every", "4", "--flap-every", "5", "--clients", "4"]
    command += ["--results", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=170, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    reports = list(tmp_path.glob("soak-*.md"))
    assert len(reports) == 1
    text = reports[0].read_text()
    assert "**PASSED**" in text and "FAILED" not in text
    assert "Reloads: " in text and ", 0 failed." in text
    ok = {line.split("|")[1].strip(): line.split("|")[2] for line in text.splitlines()[6:12]}
    for kind in ("get", "post", "stream", "cached", "ws"):
        assert int(ok[kind].replace(",", "")) > 0, f"no successful {kind} in {text}"
