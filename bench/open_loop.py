"""Latency at a fixed offered load with evenly spaced arrivals (an open-loop generator).

    python bench/open_loop.py URL [--rate 2000] [--seconds 10] [--connections 50]

`hey -q 40 -c 50` offers 2,000 req/s as 50 workers whose tickers start together, so every
25 ms all 50 requests arrive at once and the last one waits for the other 49. This generator
offers the same rate spread evenly: it wakes about once a millisecond (the event loop's timer
resolution) and sends the requests that are due, each on an idle keep-alive connection (a
request that finds none waits for one). Latency runs from the moment the request was due by
the schedule to the moment its response is complete, so neither a slow target nor a late
timer lowers the load offered or hides a wait (no coordinated omission). Prints one JSON line: the count, errors,
p50/p90/p99/p99.9/max in milliseconds, and how late the timer woke (p99), to show the
generator kept to its schedule.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import collections.abc
import contextlib
import json
import time
import typing
from urllib.parse import urlsplit

import httptools


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection that sends a GET and times its response."""

    def __init__(
        self, request: bytes, on_free: collections.abc.Callable[[Connection], None]
    ) -> None:
        self.request = request
        self.on_free = on_free
        """Called with this connection when its response is complete."""
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.started = 0.0
        self.latencies: list[float] = []
        self.errors = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        self.transport = typing.cast(asyncio.Transport, transport)

    def send(self, started: float) -> None:
        """Send the request; `started` is when it was due (on a lost connection: dropped)."""
        self.started = started
        if self.transport is not None:
            self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        """Feed the parser."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.errors += 1
            if self.transport is not None:
                self.transport.close()

    def on_message_complete(self) -> None:
        """Record the latency (an error unless 200) and free the connection."""
        self.latencies.append(time.perf_counter() - self.started)
        if self.parser.get_status_code() != 200:
            self.errors += 1
        self.on_free(self)

    def connection_lost(self, exc: Exception | None) -> None:
        """The target closed the connection: a request in flight on it counts as an error."""
        self.transport = None


async def offer(
    url: str, rate: float, seconds: float, connections: int, drain_seconds: float = 10
) -> dict[str, float]:
    """Offer `rate` requests a second to `url` for `seconds`; the latency summary.

    Answers still missing `drain_seconds` after the last request was sent count as errors.
    """
    loop = asyncio.get_running_loop()
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.hostname or "127.0.0.1"
    request = f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nUser-Agent: open-loop\r\n\r\n"
    head = request.encode()
    total = int(rate * seconds)
    sent = 0
    idle: collections.deque[Connection] = collections.deque()
    waiting: collections.deque[float] = collections.deque()
    drained = asyncio.Event()

    def free(connection: Connection) -> None:
        if waiting:
            connection.send(waiting.popleft())
            return
        idle.append(connection)
        if len(idle) == connections and sent == total:
            drained.set()

    pool = []
    for _ in range(connections):
        _, connection = await loop.create_connection(
            lambda: Connection(head, free), host, parts.port or 80
        )
        idle.append(connection)
        pool.append(connection)
    lateness: list[float] = []
    start = time.perf_counter()
    while sent < total:
        now = time.perf_counter()
        due = min(total, int((now - start) * rate) + 1)
        if due > sent:
            lateness.append(now - (start + sent / rate))
        while sent < due:
            scheduled = start + sent / rate  # latency counts from here, however late the timer
            if idle:
                idle.popleft().send(scheduled)
            else:
                waiting.append(scheduled)
            sent += 1
        await asyncio.sleep(max(0.0, start + sent / rate - time.perf_counter()))
    if len(idle) < connections or waiting:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(drained.wait(), drain_seconds)
    for connection in pool:
        if connection.transport is not None:
            connection.transport.close()
    latencies = sorted(x for c in pool for x in c.latencies)
    lateness.sort()

    def quantile(values: list[float], q: float) -> float:
        return values[min(len(values) - 1, int(q * len(values)))] * 1000 if values else 0.0

    return {
        "requests": len(latencies),
        "offered": total,
        "errors": sum(c.errors for c in pool) + total - len(latencies),
        "p50_ms": quantile(latencies, 0.50),
        "p90_ms": quantile(latencies, 0.90),
        "p99_ms": quantile(latencies, 0.99),
        "p999_ms": quantile(latencies, 0.999),
        "max_ms": latencies[-1] * 1000 if latencies else 0.0,
        "timer_late_p99_ms": quantile(lateness, 0.99),
    }


def main() -> None:
    """Parse arguments, run, print the summary as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, default=2000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=50)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(offer(args.url, args.rate, args.seconds, args.connections))))


if __name__ == "__main__":
    main()
