"""Throughput of one large FTP transfer through the Kairos FTP listener, beside direct.

Starts a pyftpdlib server and `kairos serve` (an `ftp` listener in front of it) as
subprocesses on loopback, then downloads and uploads one file directly and through the
gateway, interleaved (median of `--reps`), and prints a markdown table. Integrity is checked (SHA-256) outside
the timed part.

    python plugins/kairos-ftp/bench/bench_ftp_throughput.py              # 256 MiB
    python plugins/kairos-ftp/bench/bench_ftp_throughput.py --size 1GiB  # the issue's size
"""

from __future__ import annotations

import argparse
import ftplib
import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from statistics import median

USER, PASSWORD = "bench", "bench"
BLOCK = 1024 * 1024


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def parse_size(text: str) -> int:
    """`256MiB`, `1GiB`, or a byte count."""
    units = {"kib": 1024, "mib": 1024**2, "gib": 1024**3}
    lowered = text.lower()
    for suffix, factor in units.items():
        if lowered.endswith(suffix):
            return int(float(lowered[: -len(suffix)]) * factor)
    return int(text)


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    """Block until something listens on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def start_ftp_server(root: Path, port: int) -> subprocess.Popen[bytes]:
    """pyftpdlib serving `root` in its own process."""
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
    return subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.DEVNULL)


def start_gateway(
    ftp_port: int, gateway_port: int, workdir: Path, zero_copy: bool
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
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def login(port: int) -> ftplib.FTP:
    """A logged-in client using EPSV, binary mode."""
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", port, timeout=60)
    ftp.login(USER, PASSWORD)
    ftp.voidcmd("TYPE I")
    return ftp


def download(port: int, name: str, sink: Path) -> float:
    """Seconds to RETR `name` into `sink` (large reads, no per-chunk Python work but a write)."""
    ftp = login(port)
    buffer = bytearray(BLOCK)
    view = memoryview(buffer)
    with sink.open("wb", buffering=0) as out:
        started = time.perf_counter()
        conn = ftp.transfercmd(f"RETR {name}")
        while True:
            count = conn.recv_into(buffer)
            if not count:
                break
            out.write(view[:count])
        conn.close()
        ftp.voidresp()
        elapsed = time.perf_counter() - started
    ftp.quit()
    return elapsed


def upload(port: int, source: Path, name: str) -> float:
    """Seconds to STOR `source` as `name`."""
    ftp = login(port)
    with source.open("rb", buffering=0) as handle:
        started = time.perf_counter()
        conn = ftp.transfercmd(f"STOR {name}")
        while chunk := handle.read(BLOCK):
            conn.sendall(chunk)
        conn.close()
        ftp.voidresp()
        elapsed = time.perf_counter() - started
    ftp.quit()
    return elapsed


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


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="256MiB", help="file size (e.g. 256MiB, 1GiB)")
    parser.add_argument(
        "--copy", action="store_true", help="zero_copy: false (the copying relay, as for TLS)"
    )
    parser.add_argument("--reps", type=int, default=2, help="interleaved repetitions (median)")
    args = parser.parse_args()
    size = parse_size(args.size)
    # files in memory where possible: disk writeback of one run must not slow the next
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
        server = start_ftp_server(root, ftp_port)
        gateway = start_gateway(ftp_port, gateway_port, workdir, not args.copy)
        try:
            wait_for_port(ftp_port)
            wait_for_port(gateway_port)
            seconds: dict[str, list[list[float]]] = {"direct": [[], []], "through Kairos": [[], []]}
            gateway_cpu: list[list[float]] = [[], []]
            targets = (("direct", ftp_port), ("through Kairos", gateway_port))
            for rep in range(args.reps):
                for label, port in targets if rep % 2 == 0 else targets[::-1]:
                    sink = workdir / "sink.bin"
                    cpu_before = cpu_seconds(gateway.pid)
                    seconds[label][0].append(download(port, "big.bin", sink))
                    if port == gateway_port:
                        gateway_cpu[0].append(cpu_seconds(gateway.pid) - cpu_before)
                    assert sha256(sink) == expected, f"{label}: download corrupted"
                    sink.unlink()
                    cpu_before = cpu_seconds(gateway.pid)
                    seconds[label][1].append(upload(port, source, "up.bin"))
                    if port == gateway_port:
                        gateway_cpu[1].append(cpu_seconds(gateway.pid) - cpu_before)
                    assert sha256(root / "up.bin") == expected, f"{label}: upload corrupted"
                    (root / "up.bin").unlink()
            rows = [
                (label, size / median(down) / 1e6, size / median(up) / 1e6)
                for label, (down, up) in seconds.items()
            ]
        finally:
            for process in (gateway, server):
                process.terminate()
                process.wait(10)
    mib = size / 1024**2
    print(
        f"\n### FTP throughput, {mib:.0f} MiB, median of {args.reps} interleaved runs"
        " (MB/s; SHA-256 verified)\n"
    )
    print("| path | download | upload |")
    print("|---|---:|---:|")
    for label, down_rate, up_rate in rows:
        print(f"| {label} | {down_rate:,.0f} | {up_rate:,.0f} |")
    direct, proxied = rows
    print(
        f"| through Kairos / direct | {proxied[1] / direct[1]:.0%} | {proxied[2] / direct[2]:.0%} |"
    )
    per_gib = [median(cpu) / (size / 1024**3) for cpu in gateway_cpu]
    print(f"| gateway CPU s per GiB | {per_gib[0]:.2f} | {per_gib[1]:.2f} |")
    print(
        f"\nrelay: {'copy' if args.copy else 'splice (zero_copy)'}; load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
