"""Throughput of one large FTP transfer through the Kairos FTP listener, beside direct.

Starts a pyftpdlib server and `kairos serve` (an `ftp` listener in front of it) as
subprocesses on loopback, then downloads and uploads one file directly and through the
gateway with the same client, in alternating order (direct first on even reps, through
first on odd ones), and prints a markdown table.

Placement (`--placement split`, the default): the gateway alone on CPU 0; the client and
the server share CPU 1, for the direct run as for the gateway run, so both paths give the
client and the server the same CPU and the gateway's own cost shows as CPU-seconds. With
`--placement none` nothing is pinned (three processes then compete for two cores).

Each timed download discards the bytes (the client's cost is one kernel copy); one untimed
download per path is written and SHA-256 checked first, and every upload is checked on the
server's disk, outside the timed part. Files live in /dev/shm.

    python plugins/kairos-ftp/bench/bench_ftp_throughput.py                    # 256 MiB
    python plugins/kairos-ftp/bench/bench_ftp_throughput.py --size 1GiB --reps 5
"""

from __future__ import annotations

import argparse
import asyncio
import ftplib
import hashlib
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from statistics import median

from kairos_core.testing import free_port, wait_for_port

USER, PASSWORD = "bench", "bench"
BLOCK = 1024 * 1024
PLACEMENTS: dict[str, tuple[set[int] | None, set[int] | None]] = {
    "split": ({0}, {1}),  # (gateway CPUs, client + server CPUs)
    "none": (None, None),
}


def parse_size(text: str) -> int:
    """`256MiB`, `1GiB`, or a byte count."""
    units = {"kib": 1024, "mib": 1024**2, "gib": 1024**3}
    lowered = text.lower()
    for suffix, factor in units.items():
        if lowered.endswith(suffix):
            return int(float(lowered[: -len(suffix)]) * factor)
    return int(text)


def pinned(cpus: set[int] | None) -> Callable[[], None] | None:
    """A preexec_fn that pins the child to `cpus` (None: leave it free)."""
    return None if cpus is None else lambda: os.sched_setaffinity(0, cpus)


def start_ftp_server(root: Path, port: int, cpus: set[int] | None) -> subprocess.Popen[bytes]:
    """pyftpdlib serving `root` in its own process (sendfile for downloads, its defaults)."""
    code = textwrap.dedent(
        f"""
        import logging, warnings
        warnings.simplefilter("ignore")
        from pyftpdlib.authorizers import DummyAuthorizer
        from pyftpdlib.handlers import FTPHandler
        from pyftpdlib.servers import FTPServer
        logging.basicConfig(level=logging.WARNING)
        auth = DummyAuthorizer()
        auth.add_user({USER!r}, {PASSWORD!r}, {str(root)!r}, perm="elradfmwMT")
        FTPHandler.authorizer = auth
        FTPServer(("127.0.0.1", {port}), FTPHandler).serve_forever()
        """
    )
    return subprocess.Popen(
        [sys.executable, "-c", code], stderr=subprocess.DEVNULL, preexec_fn=pinned(cpus)
    )


def start_gateway(
    ftp_port: int, gateway_port: int, workdir: Path, zero_copy: bool, cpus: set[int] | None
) -> subprocess.Popen[bytes]:
    """`kairos serve` with one FTP listener in front of the server."""
    config = workdir / "kairos-ftp-bench.yaml"
    config.write_text(
        textwrap.dedent(
            f"""
            admin: {{enabled: false}}
            upstreams:
              files:
                backends: [{{url: "ftp://127.0.0.1:{ftp_port}"}}]
            listeners:
              - protocol: ftp
                host: 127.0.0.1
                port: {gateway_port}
                config: {{upstream: files, zero_copy: {str(zero_copy).lower()}}}
            """
        )
    )
    return subprocess.Popen(
        [sys.executable, "-m", "kairos_cli", "serve", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=pinned(cpus),
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def busy_seconds() -> list[float]:
    """Busy time of each CPU (all but idle, iowait and steal) from /proc/stat."""
    tick = os.sysconf("SC_CLK_TCK")
    busy = []
    for line in Path("/proc/stat").read_text().splitlines()[1:]:
        if not line.startswith("cpu"):
            break
        user, nice, system, _idle, _iowait, irq, softirq = map(int, line.split()[1:8])
        busy.append((user + nice + system + irq + softirq) / tick)
    return busy


def client_cpu_seconds() -> float:
    """CPU of this process and its reaped children (the client, in process or curl)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def login(port: int) -> ftplib.FTP:
    """A logged-in client using EPSV, binary mode."""
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", port, timeout=60)
    ftp.login(USER, PASSWORD)
    ftp.voidcmd("TYPE I")
    return ftp


def ftplib_download(port: int, name: str, sink: Path | None) -> None:
    """RETR `name` with 1 MiB reads into one buffer; written to `sink` only when given."""
    ftp = login(port)
    buffer = bytearray(BLOCK)
    view = memoryview(buffer)
    with ftp.transfercmd(f"RETR {name}") as conn:
        if sink is None:
            while conn.recv_into(buffer):
                pass
        else:
            with sink.open("wb", buffering=0) as out:
                while count := conn.recv_into(buffer):
                    out.write(view[:count])
    ftp.voidresp()
    ftp.quit()


def ftplib_upload(port: int, source: Path, name: str) -> None:
    """STOR `source` as `name` with sendfile(2) (the client copies nothing through Python)."""
    ftp = login(port)
    with source.open("rb") as handle, ftp.transfercmd(f"STOR {name}") as conn:
        conn.sendfile(handle)
    ftp.voidresp()
    ftp.quit()


def curl_download(port: int, name: str, sink: Path | None) -> None:
    """curl RETR to `sink` or /dev/null."""
    url = f"ftp://{USER}:{PASSWORD}@127.0.0.1:{port}/{name}"
    subprocess.run(["curl", "-sS", "-o", str(sink or os.devnull), url], check=True)


def curl_upload(port: int, source: Path, name: str) -> None:
    """curl STOR."""
    url = f"ftp://{USER}:{PASSWORD}@127.0.0.1:{port}/{name}"
    subprocess.run(["curl", "-sS", "-T", str(source), url], check=True)


CLIENTS = {"ftplib": (ftplib_download, ftplib_upload), "curl": (curl_download, curl_upload)}


def sha256(path: Path) -> str:
    """Hex digest of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(BLOCK * 4):
            digest.update(chunk)
    return digest.hexdigest()


def make_file(path: Path, size: int) -> None:
    """`size` pseudo-random bytes (a repeated random block: cheap to make, not compressible)."""
    block = os.urandom(BLOCK)
    with path.open("wb") as handle:
        left = size
        while left:
            handle.write(block[: min(left, BLOCK)])
            left -= min(left, BLOCK)


@dataclass
class Runs:
    """Per-rep figures of one (path, direction): seconds, and CPU-seconds of each process."""

    seconds: list[float] = field(default_factory=list)
    gateway: list[float] = field(default_factory=list)
    client: list[float] = field(default_factory=list)
    server: list[float] = field(default_factory=list)
    busy: list[list[float]] = field(default_factory=list)
    """Fraction of each CPU that was busy (anything running, softirqs included)."""


def measure(runs: Runs, action: Callable[[], None], gateway_pid: int, server_pid: int) -> None:
    """Time `action` and record the CPU each process spent on it."""
    before = (cpu_seconds(gateway_pid), cpu_seconds(server_pid), client_cpu_seconds())
    cpus = busy_seconds()
    started = time.perf_counter()
    action()
    elapsed = time.perf_counter() - started
    runs.busy.append([(b - a) / elapsed for a, b in zip(cpus, busy_seconds(), strict=True)])
    runs.seconds.append(elapsed)
    after = (cpu_seconds(gateway_pid), cpu_seconds(server_pid), client_cpu_seconds())
    runs.gateway.append(after[0] - before[0])
    runs.server.append(after[1] - before[1])
    runs.client.append(after[2] - before[2])


def report(runs: dict[tuple[str, str], Runs], size: int, args: argparse.Namespace) -> None:
    """Print the markdown table."""
    gib = size / 1024**3
    directions = ("download", "upload")

    def row(label: str, cells: list[str]) -> None:
        print(f"| {label} | {' | '.join(cells)} |")

    def ratios(d: str) -> list[float]:
        direct, through = runs[("direct", d)].seconds, runs[("through", d)].seconds
        return [a / b for a, b in zip(direct, through, strict=True)]

    print(
        f"\n### FTP throughput, {size / 1024**2:.0f} MiB, {args.reps} alternating reps, medians"
        f" (client {args.client}, placement {args.placement}, relay"
        f" {'copy' if args.copy else 'splice'})\n"
    )
    print("| | download | upload |")
    print("|---|---:|---:|")
    for path, label in (("direct", "direct"), ("through", "through Kairos")):
        row(
            f"{label}, MB/s",
            [f"{size / median(runs[(path, d)].seconds) / 1e6:,.0f}" for d in directions],
        )
    row("**through / direct**", [f"**{median(ratios(d)):.0%}**" for d in directions])
    row(
        "gateway CPU-s per GiB",
        [f"{median(runs[('through', d)].gateway) / gib:.2f}" for d in directions],
    )
    for path in ("direct", "through"):
        cells = [
            f"{median(runs[(path, d)].client) / gib:.2f} + {median(runs[(path, d)].server) / gib:.2f}"
            for d in directions
        ]
        row(f"client + server CPU-s per GiB, {path}", cells)
    for cpu in range(len(runs[("direct", "download")].busy[0])):
        for path in ("direct", "through"):
            cells = [f"{median(b[cpu] for b in runs[(path, d)].busy):.0%}" for d in directions]
            row(f"CPU {cpu} busy, {path}", cells)
    print()
    for d in directions:
        print(f"- {d}, through / direct per rep: {', '.join(f'{r:.0%}' for r in ratios(d))}")
    print(f"- load average at the end: {os.getloadavg()[0]:.1f}")
    if args.placement == "split":
        idle_core = max(median(b[0] for b in runs[("direct", d)].busy) for d in directions)
        if idle_core > 0.2:
            print(
                f"- **CPU 0 was {idle_core:.0%} busy during the direct runs**: other processes"
                " shared the gateway's core, so the ratio understates the gateway"
            )


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="256MiB", help="file size (e.g. 256MiB, 1GiB)")
    parser.add_argument("--reps", type=int, default=5, help="alternating repetitions (median)")
    parser.add_argument("--client", choices=sorted(CLIENTS), default="ftplib")
    parser.add_argument("--placement", choices=sorted(PLACEMENTS), default="split")
    parser.add_argument(
        "--copy", action="store_true", help="zero_copy: false (the copying relay, as for TLS)"
    )
    args = parser.parse_args()
    size = parse_size(args.size)
    if args.placement == "split" and not {0, 1} <= os.sched_getaffinity(0):
        parser.error("--placement split needs CPUs 0 and 1; use --placement none")
    gateway_cpus, peer_cpus = PLACEMENTS[args.placement]
    if peer_cpus is not None:
        os.sched_setaffinity(0, peer_cpus)  # the in-process client (curl inherits it)
    download, upload = CLIENTS[args.client]
    shm = "/dev/shm" if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(prefix="kairos-ftp-bench-", dir=shm) as tmp:
        workdir = Path(tmp)
        root = workdir / "root"
        root.mkdir()
        source = workdir / "source.bin"
        make_file(source, size)
        os.link(source, root / "big.bin")
        expected = sha256(source)
        ftp_port, gateway_port = free_port(), free_port()
        server = start_ftp_server(root, ftp_port, peer_cpus)
        gateway = start_gateway(ftp_port, gateway_port, workdir, not args.copy, gateway_cpus)
        try:
            asyncio.run(wait_for_port(ftp_port))
            asyncio.run(wait_for_port(gateway_port))
            targets = (("direct", ftp_port), ("through", gateway_port))
            for label, port in targets:  # untimed: every byte arrives on both paths
                download(port, "big.bin", workdir / "sink.bin")
                assert sha256(workdir / "sink.bin") == expected, f"{label}: download corrupted"
                (workdir / "sink.bin").unlink()
            runs = {(p, d): Runs() for p, _ in targets for d in ("download", "upload")}
            pids = (gateway.pid, server.pid)
            for rep in range(args.reps):
                for label, port in targets if rep % 2 == 0 else targets[::-1]:
                    measure(
                        runs[(label, "download")], partial(download, port, "big.bin", None), *pids
                    )
                    measure(runs[(label, "upload")], partial(upload, port, source, "up.bin"), *pids)
                    assert sha256(root / "up.bin") == expected, f"{label}: upload corrupted"
                    (root / "up.bin").unlink()
        finally:
            for process in (gateway, server):
                process.terminate()
                process.wait(10)
    report(runs, size, args)


if __name__ == "__main__":
    main()
