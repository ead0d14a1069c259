"""What the soak measures of the gateway: RSS and open fds of its process tree, tasks from /metrics."""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp


@dataclass
class Sample:
    """One reading of the gateway's process tree."""

    at: float
    pids: tuple[int, ...]
    rss_kib: int
    fds: int
    tasks: float
    in_flight: float
    connections: float
    rss_by_pid: dict[int, int]


def tree(root: int) -> list[int]:
    """`root` and all its descendants (a forkserver's workers included)."""
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        found.append(pid)
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                queue += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
    return sorted(set(found))


def rss_kib(pid: int) -> int:
    """Resident set size of `pid` in KiB (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def fd_count(pid: int) -> int:
    """Open file descriptors of `pid` (0 once it is gone)."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def gauge(text: str, name: str) -> float:
    """The summed value of an unlabelled gauge in a Prometheus exposition."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def counter(text: str, series: str) -> float:
    """The value of one exact series (`name{labels}`), 0 when absent."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def metrics(session: aiohttp.ClientSession, admin: str) -> str:
    """The admin API's exposition."""
    async with session.get(admin + "/metrics") as response:
        response.raise_for_status()
        return await response.text()


async def sample(session: aiohttp.ClientSession, admin: str, root: int) -> Sample:
    """Read the tree and the gauges now."""
    text = await metrics(session, admin)
    pids = tree(root)
    rss = {p: rss_kib(p) for p in pids}
    return Sample(
        at=time.monotonic(),
        pids=tuple(pids),
        rss_kib=sum(rss.values()),
        fds=sum(fd_count(p) for p in pids),
        tasks=gauge(text, "kairos_event_loop_tasks"),
        in_flight=gauge(text, "kairos_requests_in_flight"),
        connections=gauge(text, "kairos_open_connections"),
        rss_by_pid=rss,
    )


def median(samples: list[Sample]) -> Sample:
    """The median of each figure over a few quiet samples."""
    last = samples[-1]
    return Sample(
        at=last.at,
        pids=last.pids,
        rss_kib=int(statistics.median(s.rss_kib for s in samples)),
        fds=int(statistics.median(s.fds for s in samples)),
        tasks=statistics.median(s.tasks for s in samples),
        in_flight=statistics.median(s.in_flight for s in samples),
        connections=statistics.median(s.connections for s in samples),
        rss_by_pid={
            pid: int(statistics.median(s.rss_by_pid.get(pid, 0) for s in samples))
            for pid in last.pids
        },
    )


def worst_rss_growth(first: Sample, last: Sample) -> tuple[int, float, float]:
    """The process whose RSS grew most past its limit: (pid, growth KiB, limit KiB)."""
    worst = (0, 0.0, 1.0)
    for pid, before in first.rss_by_pid.items():
        growth = last.rss_by_pid.get(pid, 0) - before
        limit = max(before * 0.10, 8 * 1024)
        if growth / limit > worst[1] / worst[2]:
            worst = (pid, float(growth), limit)
    return worst


def slope_mib_per_min(samples: list[Sample]) -> float:
    """Least-squares RSS trend over `samples`, MiB per minute (0 with fewer than 3)."""
    if len(samples) < 3:
        return 0.0
    xs = [s.at for s in samples]
    ys = [s.rss_kib / 1024 for s in samples]
    return statistics.linear_regression(xs, ys).slope * 60
