"""The soak's markdown report: requests by kind, errors, reloads, flaps, growth, verdict."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from soak_probe import Sample


@dataclass
class Verdict:
    """Named checks, each passed or not."""

    checks: list[tuple[str, bool]]

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return all(ok for _, ok in self.checks)


def _mib(kib: float) -> str:
    return f"{kib / 1024:.1f}"


def report(
    soak: Any,
    args: argparse.Namespace,
    first: Sample,
    last: Sample,
    warmup: float,
    elapsed: float,
    verdict: Verdict,
    stamp: str,
) -> str:
    """The whole report as markdown."""
    ledger = soak.ledger
    total_ok = sum(ledger.ok.values())
    lines = [
        f"# Kairos soak {stamp}",
        "",
        f"{elapsed:.0f} s in all ({warmup:.0f} s warm-up), gateway `--workers {args.workers}`, "
        f"{args.clients} load clients, a reload every {args.reload_every:g} s, "
        f"a flap every {args.flap_every:g} s. **{'PASSED' if verdict.passed else 'FAILED'}**",
        "",
        "| kind | ok | expected failures | unexpected |",
        "|---|---:|---:|---:|",
    ]
    for kind in ("get", "post", "stream", "cached", "ws", "refused"):
        expected = sum(v for k, v in ledger.expected.items() if k.startswith(kind + ":"))
        lines.append(
            f"| {kind} | {ledger.ok[kind]:,} | {expected:,} | {ledger.unexpected[kind]:,} |"
        )
    expected_total = sum(ledger.expected.values())
    unexpected_total = sum(ledger.unexpected.values())
    lines += [
        f"| **all** | **{total_ok:,}** | **{expected_total:,}** | **{unexpected_total:,}** |",
        "",
        f"Cache hits: {ledger.cache_hits:,} of {ledger.ok['cached']:,} cached-route answers; "
        f"generations seen by the load: {len(ledger.generations)} of {soak.generation + 1}.",
        "",
    ]
    if ledger.expected:
        lines += ["Expected failures by reason:", ""]
        lines += [f"- {reason}: {count:,}" for reason, count in sorted(ledger.expected.items())]
        lines.append("")
    admin = sum(1 for how, _, _ in soak.reloads if how == "admin")
    failed = [f"{how}: {detail[:200]}" for how, ok, detail in soak.reloads if not ok]
    terms = sum(1 for s in ledger.stops if s.mode == "term")
    kills = len(ledger.stops) - terms
    lines += [
        f"Reloads: {len(soak.reloads)} ({admin} via the admin API, "
        f"{len(soak.reloads) - admin} via SIGHUP), {len(failed)} failed.",
        f"Flaps: {len(ledger.stops)} ({terms} drained and SIGTERMed, {kills} SIGKILLed), each "
        "backend down 5 s, the next flap only once all were healthy again.",
        "",
        "Flap log (seconds since the start, backend, how): "
        + ", ".join(f"{s.began - soak.started:.0f} {s.backend} {s.mode}" for s in ledger.stops)
        + ".",
        "",
        "| at rest | processes | RSS MiB | open fds | asyncio tasks |",
        "|---|---:|---:|---:|---:|",
        f"| after warm-up | {len(first.pids)} | {_mib(first.rss_kib)} | {first.fds} | "
        f"{first.tasks:g} |",
        f"| at the end | {len(last.pids)} | {_mib(last.rss_kib)} | {last.fds} | {last.tasks:g} |",
        f"| growth | | {_mib(last.rss_kib - first.rss_kib)} | {last.fds - first.fds:+d} | "
        f"{last.tasks - first.tasks:+g} |",
        "",
    ]
    loaded = [s for s in soak.samples if s.in_flight > 0 or s.connections > 0]
    if loaded:
        lines += [
            f"Under load ({len(loaded)} samples): RSS {_mib(min(s.rss_kib for s in loaded))} to "
            f"{_mib(max(s.rss_kib for s in loaded))} MiB, fds {min(s.fds for s in loaded)} to "
            f"{max(s.fds for s in loaded)}, tasks {min(s.tasks for s in loaded):g} to "
            f"{max(s.tasks for s in loaded):g}; RSS trend after warm-up "
            f"{soak.trend:+.2f} MiB/min.",
            "",
        ]
    lines += ["| check | result |", "|---|---|"]
    lines += [f"| {name} | {'ok' if ok else '**FAILED**'} |" for name, ok in verdict.checks]
    if ledger.samples or failed:
        lines += ["", "First unexpected failures:", "", "```text", *ledger.samples, *failed, "```"]
    return "\n".join(lines) + "\n"
