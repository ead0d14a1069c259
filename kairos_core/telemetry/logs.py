"""Application logs: plain text for people, or JSON lines with the same field names as access logs."""

from __future__ import annotations

import logging
import sys
import time

import orjson

_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message (+ exception)."""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record as a JSON line."""
        fields: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(fields).decode()


def configure_logging(level: str, fmt: str, worker: int | None = None) -> None:
    """Set the root logger's level and format (idempotent; replaces earlier handlers)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        prefix = f"[w{worker}]" if worker is not None else ""
        handler.setFormatter(
            logging.Formatter(_TEXT_FORMAT.replace("%(name)s", f"%(name)s{prefix}"))
        )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper()))
