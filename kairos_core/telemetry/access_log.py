"""Access log lines (JSON or text) written through a buffer, flushed by size or by timer."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from typing import Any

import orjson

from kairos_core.config.observability import AccessLogConfig

log = logging.getLogger("kairos.access")


_MILLIS = tuple(f".{ms:03d}Z" for ms in range(1000))
"""The end of a timestamp for each millisecond: looked up, never formatted per line."""


class _Clock:
    """ISO-8601 UTC timestamps with milliseconds; the seconds part is formatted once a second."""

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def now(self) -> str:
        """The current time, e.g. `2026-11-27T12:00:00.123Z`."""
        stamp = time.time()
        second = int(stamp)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return self._prefix + _MILLIS[int((stamp - second) * 1000)]


class AccessLog:
    """Buffers access log lines and writes them in batches; a write error drops lines, never requests."""

    def __init__(self, config: AccessLogConfig) -> None:
        self.config = config
        self.json = config.format == "json"
        self._buffer: list[bytes] = []
        self._size = 0
        self._limit = int(config.buffer_size)
        self._clock = _Clock()
        self._timer: asyncio.TimerHandle | None = None
        self._file: Any = None
        self.dropped = 0
        self._last_error = 0.0
        destination = config.destination
        if destination == "stdout":
            self._fd = sys.stdout.fileno()
        elif destination == "stderr":
            self._fd = sys.stderr.fileno()
        else:
            self._file = open(destination, "ab", buffering=0)  # noqa: SIM115 - closed in close()
            self._fd = self._file.fileno()

    def start(self) -> None:
        """Start the periodic flush."""
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self.config.flush_interval, self._tick)

    def _tick(self) -> None:
        self.flush()
        self._timer = asyncio.get_running_loop().call_later(self.config.flush_interval, self._tick)

    def write(self, fields: dict[str, Any]) -> None:
        """Queue one request's line."""
        fields["time"] = self._clock.now()
        if self.json:
            line = orjson.dumps(fields, option=orjson.OPT_APPEND_NEWLINE)
        else:
            line = _text_line(fields).encode("utf-8", "replace")
        self._buffer.append(line)
        self._size += len(line)
        if self._size >= self._limit:
            self.flush()

    def flush(self) -> None:
        """Write what is buffered; on failure (disk full, closed pipe) drop it and say so."""
        if not self._buffer:
            return
        data = b"".join(self._buffer)
        count = len(self._buffer)
        self._buffer.clear()
        self._size = 0
        try:
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError as exc:
            self.dropped += count
            now = time.monotonic()
            if now - self._last_error > 60:
                self._last_error = now
                log.error(
                    "access log write failed (%s); %d lines dropped so far",
                    exc.strerror or exc,
                    self.dropped,
                )

    def close(self) -> None:
        """Flush and stop."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.flush()
        if self._file is not None:
            self._file.close()
            self._file = None


def _text_line(f: dict[str, Any]) -> str:
    consumer = f.get("consumer") or "-"
    return (
        f'{f["client"]} - {consumer} [{f["time"]}] "{f["method"]} {f["path"]}" {f["status"]} '
        f"{f['bytes_out']} {f['duration_ms']}ms route={f['route']} upstream={f.get('upstream') or '-'} "
        f"request_id={f['request_id']}\n"
    )
