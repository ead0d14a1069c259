"""The shared memory table: one state for every process, locking, clean-up and eviction."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

from kairos_ratelimit.config import LimitSpec
from kairos_ratelimit.shared_counters import SharedConcurrency, SharedLog, SharedWindowed
from kairos_ratelimit.shared_memory import HEADER, SharedTable, segment_name, sweep_stale

SPEC = LimitSpec(rate="5/h", algorithm="fixed_window")


def test_two_attachments_share_one_state(private_dir: Path) -> None:
    path = private_dir / "seg"
    first, second = SharedWindowed(SPEC, path, 100), SharedWindowed(SPEC, path, 100)
    assert [first.hit("k").remaining, second.hit("k").remaining, first.hit("k").remaining] == [
        4,
        3,
        2,
    ]
    first.close()
    second.close()


def test_other_processes_see_the_same_counts(private_dir: Path) -> None:
    path = private_dir / "seg"
    mine = SharedWindowed(SPEC, path, 100)
    mine.hit("k")
    script = (
        "import sys; from pathlib import Path\n"
        "from kairos_ratelimit.config import LimitSpec\n"
        "from kairos_ratelimit.shared_counters import SharedWindowed\n"
        "c = SharedWindowed(LimitSpec(rate='5/h', algorithm='fixed_window'), Path(sys.argv[1]), 100)\n"
        "print([c.hit('k').remaining for _ in range(3)])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[3, 2, 1]"
    assert mine.hit("k").remaining == 0
    assert not mine.hit("k").allowed
    mine.close()


def test_last_one_to_leave_removes_the_file(private_dir: Path) -> None:
    path = private_dir / "seg"
    first, second = SharedWindowed(SPEC, path, 100), SharedLog(SPEC, path, 100)
    first.close()
    assert path.exists()  # the other one is still attached
    second.close()
    assert not path.exists()


def test_segments_of_dead_gateways_are_swept(private_dir: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    stale = private_dir / segment_name(f"{dead.stdout.strip()}-abcd", "x")
    live = private_dir / segment_name(f"{os.getpid()}-abcd", "x")
    stale.write_bytes(b"\0" * 10)
    live.write_bytes(b"\0" * 10)
    assert sweep_stale(private_dir) == 1
    assert not stale.exists()
    assert live.exists()


def test_full_probe_window_evicts_the_stalest_key(private_dir: Path) -> None:
    counter = SharedWindowed(SPEC, private_dir / "seg", 8)  # one stripe of 8 slots
    for n in range(12):
        assert counter.hit(f"k{n}").allowed
    assert counter.evictions == 4
    counter.close()


def test_new_process_for_a_worker_drops_that_workers_slots(private_dir: Path) -> None:
    path = private_dir / "seg"
    spec = LimitSpec(algorithm="concurrency", limit=2)
    worker0, worker1 = (
        SharedConcurrency(spec, path, 64, 0, 2),
        SharedConcurrency(spec, path, 64, 1, 2),
    )
    held0, held1 = worker0.hit("k"), worker1.hit("k")
    assert held0.allowed
    assert held1.allowed
    assert not worker0.hit("k").allowed
    # worker 0's process dies holding its slot; the supervisor starts a new process for it
    table = SharedTable(path, 64, 8)
    struct.pack_into("=q", table.map, 8, 999_999_999)
    table.close()
    restarted = SharedConcurrency(spec, path, 64, 0, 2)
    assert restarted.hit("k").allowed  # worker 0's slot was freed, worker 1's is kept
    assert not restarted.hit("k").allowed
    worker1.undo(held1)
    assert restarted.hit("k").allowed
    for counter in (worker0, worker1, restarted):
        counter.close()


def test_reattaching_in_the_same_process_keeps_slots(private_dir: Path) -> None:
    path = private_dir / "seg"
    spec = LimitSpec(algorithm="concurrency", limit=1)
    old = SharedConcurrency(spec, path, 64, 0, 2)
    assert old.hit("k").allowed
    new = SharedConcurrency(spec, path, 64, 0, 2)  # a reload in the same worker
    assert not new.hit("k").allowed
    assert path.stat().st_size >= HEADER
    old.close()
    new.close()
