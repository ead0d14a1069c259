"""How steady the CPU is: a fixed loop timed in short windows, and the episodes when it runs slow.

    python bench/cpu_stalls.py [--seconds 5]

On a virtual machine the host can slow or pause a virtual CPU for tens of milliseconds. A
gateway with little headroom queues requests through such an episode while one with a lot does
not, so a tail latency means little without knowing how often they came. The loop runs 20,000
steps per window; a window more than twice the median is slow; consecutive slow windows make an
episode. Prints one line: the median window, the share of slow windows, the number of episodes
of 10 ms or more and the longest.
"""

from __future__ import annotations

import argparse
import statistics
import time


def windows(seconds: float, steps: int = 20_000) -> list[float]:
    """Seconds each window of `steps` loop iterations took, for `seconds`."""
    timings = []
    end = time.perf_counter() + seconds
    while (started := time.perf_counter()) < end:
        i = 0
        while i < steps:
            i += 1
        timings.append(time.perf_counter() - started)
    return timings


def summary(timings: list[float]) -> str:
    """The median window, slow windows and slow episodes, in one line."""
    median = statistics.median(timings)
    episodes: list[float] = []
    current = 0.0
    for timing in [*timings, 0.0]:
        if timing > 2 * median:
            current += timing
        elif current:
            episodes.append(current)
            current = 0.0
    slow = sum(1 for t in timings if t > 2 * median)
    long_ones = [e for e in episodes if e >= 0.010]
    return (
        f"median window {median * 1000:.2f} ms; {100 * slow / len(timings):.1f}% of windows more "
        f"than 2x slower; {len(long_ones)} slow episodes of 10 ms or more, the longest "
        f"{max(episodes, default=0.0) * 1000:.0f} ms"
    )


def main() -> None:
    """Measure and print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5)
    print(summary(windows(parser.parse_args().seconds)))


if __name__ == "__main__":
    main()
