"""Run the whole benchmark: Kairos beside nginx and the minimal aiohttp proxy, plus microbenchmarks.

    python bench/run.py                 # full run (~25 min), writes bench/results/<time>.md
    python bench/run.py --smoke         # wiring check (~4 min)
    python bench/run.py --compiled      # also a mypyc-compiled copy (tools/compile_hot_path.py)
    python bench/run.py --instructions  # also instructions per request (callgrind, ~20 min more)
    nox -s bench                        # the same in a fresh environment

Only ratios and CPU µs per request from one run mean anything on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

from kairos_core.testing import wait_for_port

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
SECRET = "kairos-bench-secret-0123456789abcdef-0123456789"


def kairos_targets(kairos: str) -> list[str]:
    """`--add` specs: NAME|PORT|CPUS|COMMAND for each Kairos configuration."""
    config = HERE / "configs"
    return [
        f"kairos-bare|27090|0|{kairos} serve --config {config / 'bare.yaml'}",
        f"kairos-observed|27091|0|{kairos} serve --config {config / 'observed.yaml'}",
        f"kairos-full|27092|0|{kairos} serve --config {config / 'full.yaml'}",
        f"kairos-3backends|27093|0|{kairos} serve --config {config / 'three-backends.yaml'}",
        f"kairos-bare-2w|27094|0,1|{kairos} serve --config {config / 'bare.yaml'} --port 27094 --workers 2",
    ]


def compiled_tree() -> Path:
    """A copy of this checkout with the hot path compiled by mypyc (rebuilt on every run)."""
    tree = RESULTS / "compiled-tree"
    script = ROOT / "tools" / "compile_hot_path.py"
    subprocess.run([sys.executable, str(script), "--copy-to", str(tree)], check=True)
    return tree


def compiled_prefix(tree: Path) -> str:
    """`env PYTHONPATH=...`: run `kairos` with the compiled copy's modules first."""
    paths = [tree, *sorted(p for p in (tree / "plugins").iterdir() if p.is_dir())]
    return "env PYTHONPATH=" + os.pathsep.join(str(p) for p in paths)


def compiled_targets(kairos: str, tree: Path) -> list[str]:
    """`--add` specs for the compiled copy: bare, full and bare with two workers."""
    config = HERE / "configs"
    run = f"{compiled_prefix(tree)} {kairos} serve"
    return [
        f"kairos-bare-mypyc|27095|0|{run} --config {config / 'bare.yaml'} --port 27095",
        f"kairos-full-mypyc|27096|0|{run} --config {config / 'full.yaml'} --port 27096",
        f"kairos-bare-2w-mypyc|27097|0,1|{run} --config {config / 'bare.yaml'} --port 27097 --workers 2",
    ]


def token() -> str:
    import jwt

    now = int(time.time())
    claims = {
        "sub": "bench",
        "iss": "https://issuer.bench",
        "aud": "api",
        "iat": now,
        "exp": now + 7 * 86400,
    }
    return jwt.encode(claims, SECRET, algorithm="HS256")


def _p99(output: str) -> float:
    for line in output.splitlines():
        if line.strip().startswith("99%"):
            return float(line.split("in")[1].split()[0]) * 1000
    return float("nan")


def on_cpus(cpus: set[int] | None) -> Callable[[], None] | None:
    """A `preexec_fn` that runs the child on `cpus` (None: wherever the kernel likes)."""
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


@contextlib.contextmanager
def started(command: list[str], cpus: set[int] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """A child process (output discarded) for the block; terminated, or killed, when it ends."""
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=on_cpus(cpus)
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def anchor_backend() -> Iterator[None]:
    """The proxy comparison's nginx backend on 127.0.0.1:27080, on CPU 1 as it is there."""
    with started(["nginx", "-c", "/tmp/benchlab/run/backend.conf"], {1} if can_pin() else None):
        yield


Placement = tuple[str, set[int] | None, set[int] | None]
"""(name, the gateway's CPUs, the load generator's CPUs); None: not pinned."""

PLACEMENTS: list[Placement] = [
    ("pinned (gateway on CPU 0, load and backend on CPU 1)", {0}, {1}),
    ("unpinned (gateway and load on both CPUs)", None, None),
]
"""As in the proxy comparison, and left to the kernel."""


def can_pin() -> bool:
    """CPUs 0 and 1 are ours, so the proxy comparison's placement can be used."""
    return {0, 1} <= os.sched_getaffinity(0)


def placements() -> list[Placement]:
    """The placements this machine allows (unpinned only on a single CPU)."""
    return PLACEMENTS if can_pin() else PLACEMENTS[1:]


LatencyRow = tuple[str, float, float, float]
"""(target, hey p99, open-loop p99, open-loop p99.9) in ms; each round lists direct first."""

NGINX = "nginx-1w"
"""The fixed-load target every other proxy is also compared with."""


@anchor_backend()
def fixed_load(kairos: str, tree: Path | None, seconds: int, rounds: int) -> str:
    """p99 through each proxy beside calling the backend directly, at 2,000 req/s, two ways."""
    lines = [
        "| placement | target | hey p99 added | open-loop p99 added (rounds' range) "
        "| open-loop p99.9 | added over nginx's |",
        "|---|---|---:|---:|---:|---:|",
    ]
    stalls = []
    targets = fixed_load_targets(kairos, tree)
    for placement, gateway_cpus, load_cpus in placements():
        measured = [
            fixed_load_round(targets, seconds, gateway_cpus, load_cpus) for _ in range(rounds)
        ]
        lines += latency_rows(placement, measured)
        probe = subprocess.run(
            [sys.executable, str(HERE / "cpu_stalls.py")],
            capture_output=True,
            text=True,
            check=False,
            preexec_fn=on_cpus(gateway_cpus),
        )
        stalls.append(f"- {placement}, the gateway's CPU right after: {probe.stdout.strip()}")
    return "\n".join(
        [
            *lines,
            "",
            f"Medians of {rounds} round(s), the targets taking turns within each round; "
            '"added" is over calling the backend directly in the same round. hey: 50 workers '
            "whose tickers fire together (a burst of 50 every 25 ms); open loop "
            "(`bench/open_loop.py`): the same rate evenly spaced, latency from when each request "
            "was due. target: p99 added by the gateway <= 2 ms; nginx, measured the same way, "
            "shows what the machine allows. How steady the CPU was (`bench/cpu_stalls.py`):",
            *stalls,
            "",
        ]
    )


def latency_rows(placement: str, rounds: list[list[LatencyRow]]) -> list[str]:
    """One table row per target: medians over rounds of what it added to direct (and to nginx)."""
    names = [row[0] for row in rounds[0]]
    values = [[row[1:] for row in rows] for rows in rounds]  # per round: (hey, p99, p99.9)

    def added(target: int, column: int) -> list[float]:
        """What `target` added to calling the backend directly, round by round."""
        return [one[target][column] - one[0][column] for one in values]

    def median(target: int, column: int) -> float:
        return statistics.median(one[target][column] for one in values)

    nginx = names.index(NGINX) if NGINX in names else None
    lines = [
        f"| {placement} | {names[0]} (its own p99) | {median(0, 0):.2f} | {median(0, 1):.2f} | "
        f"{median(0, 2):.2f} | |"
    ]
    for target in range(1, len(names)):
        evens = added(target, 1)
        span = f" ({min(evens):.2f}-{max(evens):.2f})" if len(evens) > 1 else ""
        over_nginx = ""
        if nginx is not None:
            nginx_added = added(nginx, 1)
            over_nginx = (
                f"{statistics.median(a - b for a, b in zip(evens, nginx_added, strict=True)):.2f}"
            )
        lines.append(
            f"| {placement} | {names[target]} | {statistics.median(added(target, 0)):.2f} | "
            f"{statistics.median(evens):.2f}{span} | {median(target, 2):.2f} | {over_nginx} |"
        )
    return lines


def aiohttp_anchor() -> list[str]:
    """The minimal aiohttp + uvloop proxy on 127.0.0.1:27085 in front of the anchor backend."""
    script = str(HERE / "anchors" / "minimal_aiohttp_proxy.py")
    upstream = "http://127.0.0.1:27080"
    return [sys.executable, script, "--port", "27085", "--upstream", upstream, "--loop", "uvloop"]


Target = tuple[str, str, list[str] | None]
"""(name, URL, the command that starts it or None)."""


def fixed_load_targets(kairos: str, tree: Path | None) -> list[Target]:
    """(name, URL, the command that starts it or None) for the fixed-load stage."""
    bare = str(HERE / "configs" / "bare.yaml")
    full = str(HERE / "configs" / "full.yaml")
    path = f"/api/item?id=1&access_token={token()}"  # as in the proxy comparison
    targets: list[Target] = [("backend direct", f"http://127.0.0.1:27080{path}", None)]
    nginx = Path("/tmp/benchlab/run/nginx-1w.conf")  # written by the proxy comparison
    if nginx.exists():
        command = ["nginx", "-e", str(nginx.with_suffix(".err")), "-c", str(nginx)]
        targets.append((NGINX, f"http://127.0.0.1:27081{path}", command))
    targets.append(("minimal aiohttp proxy", f"http://127.0.0.1:27085{path}", aiohttp_anchor()))
    targets.append(
        ("kairos-bare", f"http://127.0.0.1:27090{path}", [kairos, "serve", "--config", bare])
    )
    targets.append(
        ("kairos-full", f"http://127.0.0.1:27092{path}", [kairos, "serve", "--config", full])
    )
    if tree is not None:
        compiled = f"{compiled_prefix(tree)} {kairos} serve --config {bare} --port 27095"
        targets.append(("kairos-bare-mypyc", f"http://127.0.0.1:27095{path}", compiled.split()))
    return targets


def fixed_load_round(
    targets: list[Target],
    seconds: int,
    gateway_cpus: set[int] | None,
    load_cpus: set[int] | None,
) -> list[LatencyRow]:
    """Each target's p99 (hey and open loop) and open-loop p99.9 in ms, direct first, in one placement."""
    rows: list[LatencyRow] = []
    for name, url, command in targets:
        with contextlib.ExitStack() as running:
            if command is not None:
                running.enter_context(started(command, gateway_cpus))
                asyncio.run(wait_for_port(urlsplit(url).port or 80, timeout=60))
            hey = subprocess.run(
                ["hey", "-z", f"{seconds}s", "-c", "50", "-q", "40", url],
                capture_output=True,
                text=True,
                check=False,
                preexec_fn=on_cpus(load_cpus),
            ).stdout
            evenly = subprocess.run(
                [sys.executable, str(HERE / "open_loop.py"), url, "--seconds", str(seconds)],
                capture_output=True,
                text=True,
                check=False,
                preexec_fn=on_cpus(load_cpus),
            ).stdout
            found = json.loads(evenly.strip().splitlines()[-1]) if evenly.strip() else {}
            nan = float("nan")
            rows.append((name, _p99(hey), found.get("p99_ms", nan), found.get("p999_ms", nan)))
    return rows


def instruction_counts(kairos: str, tree: Path | None) -> str:
    """User-space instructions per request under callgrind, Kairos beside the aiohttp anchor."""
    path = f"/api/item?id=1&access_token={token()}"
    config = HERE / "configs"
    anchor = " ".join(aiohttp_anchor())
    targets: list[tuple[str, list[str], Path]] = [
        ("minimal aiohttp + uvloop proxy", ["--command", anchor, "27085"], ROOT),
        ("kairos-bare", [str(config / "bare.yaml"), "27090"], ROOT),
        ("kairos-full", [str(config / "full.yaml"), "27092"], ROOT),
    ]
    if tree is not None:
        targets += [
            ("kairos-bare-mypyc", [str(config / "bare.yaml"), "27090"], tree),
            ("kairos-full-mypyc", [str(config / "full.yaml"), "27092"], tree),
        ]
    rows: list[tuple[str, int | str]] = []  # (target, its count or why there is none)
    with anchor_backend():
        time.sleep(1)
        for name, args, root in targets:
            result = subprocess.run(
                ["bash", str(HERE / "count_instructions.sh"), *args, path],
                env={**os.environ, "KAIROS": kairos, "ROOT": str(root)},
                capture_output=True,
                text=True,
                check=False,
            )
            found = re.search(r"(\d+) instructions per request", result.stdout)
            failure = (result.stderr.strip().splitlines() or ["no count printed"])[-1]
            rows.append((name, int(found.group(1)) if found else failure))
    anchor_count = rows[0][1]
    lines = ["| target | instructions per request | ratio to minimal aiohttp |", "|---|---:|---:|"]
    for name, count in rows:
        if isinstance(count, str):
            lines.append(f"| {name} | failed: {count} | |")
            continue
        ratio = f"{count / anchor_count:.2f}" if isinstance(anchor_count, int) else ""
        lines.append(f"| {name} | {count:,} | {ratio} |")
    return "\n".join(lines) + (
        "\n\nuser space only (the kernel's share is not counted). Unlike CPU µs it does not "
        "depend on the machine's load: `bare` repeats to 0.1%; the full chain moves by up to "
        "15% (its access log flushes on a timer)\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="one short rep: checks the wiring")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument(
        "--latency-rounds",
        type=int,
        default=3,
        help="rounds of the fixed-load stage (every target once per round); medians are reported",
    )
    parser.add_argument("--no-proxy", action="store_true", help="microbenchmarks only")
    parser.add_argument(
        "--compiled", action="store_true", help="also a copy compiled with mypyc, same run"
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also instructions per request under callgrind (needs valgrind)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kairos-bench-") as scratch:
        # the access log of `observed` and `full` (hundreds of MB per run) goes away with it
        os.environ.setdefault("KAIROS_BENCH_LOG", f"{scratch}/access.log")
        return run_suite(args)


def run_suite(args: argparse.Namespace) -> int:
    """Every stage the arguments ask for; the report goes to bench/results/."""
    kairos = shutil.which("kairos", path=str(Path(sys.executable).parent)) or "kairos"
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    report = [f"# Kairos benchmark {stamp}\n"]
    tree = compiled_tree() if args.compiled and not args.no_proxy else None
    if not args.no_proxy:
        env = {**os.environ, "REQ_PATH": f"/api/item?id=1&access_token={token()}", "CONNS": "50"}
        if args.smoke:
            env.update(REPS="1", DURATION="3s", WARMUP="1s")
        else:
            env.update(REPS=str(args.reps))
        command = [
            str(HERE / "anchors" / "proxy_anchors.sh"),
            "--only",
            "backend,nginx-1w,aiohttp-uvloop,aiohttp-uvloop-2p",
        ]
        specs = kairos_targets(kairos) + (compiled_targets(kairos, tree) if tree else [])
        for spec in specs:
            command += ["--add", spec]
        table = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        sys.stderr.write(table.stderr[-3000:])
        report += ["## Proxy comparison (wrk -c50, 213-byte body)\n", table.stdout, ""]
    if not args.no_proxy and shutil.which("hey"):
        seconds, rounds = (3, 1) if args.smoke else (10, args.latency_rounds)
        report += [
            f"## Latency at a fixed load (2,000 req/s, {seconds} s: hey -c 50 -q 40, and evenly "
            "spaced)\n",
            fixed_load(kairos, tree, seconds, rounds),
            "",
        ]
    if args.instructions and not args.no_proxy:
        report += [
            "## Instructions per request (callgrind, hey -c 10, 3,000 requests)\n",
            instruction_counts(kairos, tree)
            if shutil.which("valgrind")
            else "skipped: valgrind is not installed (apt-get install valgrind)\n",
            "",
        ]
    for title, script in (
        ("Router", [sys.executable, str(HERE / "micro_router.py")]),
        (
            "Plugin chain (JWT, rate limit, metrics, access log; fake proxy)",
            [sys.executable, str(HERE / "micro_chain.py"), *(["--quick"] if args.smoke else [])],
        ),
        (
            "WebSocket relay (50 connections, 32-byte messages)",
            [sys.executable, str(HERE / "ws_relay.py"), "--seconds", "3" if args.smoke else "10"],
        ),
        (
            "Memory (idle PSS per additional worker, idle keep-alive connections)",
            [
                sys.executable,
                str(HERE / "memory.py"),
                *(["--connections", "500"] if args.smoke else []),
            ],
        ),
        (
            "JWT verification",
            [sys.executable, str(ROOT / "plugins/kairos-jwt/bench/bench_verify.py")],
        ),
        (
            "Rate-limit checks",
            [
                sys.executable,
                str(ROOT / "plugins/kairos-ratelimit/bench/bench_checks.py"),
                "--quick",
            ],
        ),
    ):
        result = subprocess.run(script, capture_output=True, text=True, check=False, cwd=ROOT)
        report += [f"## {title}\n", result.stdout or result.stderr[-2000:], ""]
    text = "\n".join(report)
    path = RESULTS / f"{stamp}.md"
    path.write_text(text)
    (RESULTS / "latest.md").write_text(text)
    print(text)
    print(f"written to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
