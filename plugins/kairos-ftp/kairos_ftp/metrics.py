"""Metric children of one FTP listener, resolved once when it starts."""

from __future__ import annotations

from typing import Any

from kairos_core import GatewayServices

DIRECTIONS = ("download", "upload", "listing")
OUTCOMES = ("ok", "failed", "aborted")
ERROR_KINDS = (
    "no_backend",
    "backend_lost",
    "client_limit",
    "session_limit",
    "bounce",
    "login",
    "idle_timeout",
    "data",
    "tls",
    "protocol",
)


class ListenerMetrics:
    """Counters and gauges labelled with one listener's name; O(1) per event."""

    def __init__(self, services: GatewayServices, listener: str) -> None:
        metrics = services.metrics
        sessions = metrics.counter(
            "kairos_ftp_sessions_total", "FTP control connections accepted.", ["listener"]
        )
        active = metrics.gauge("kairos_ftp_sessions_active", "Open FTP sessions.", ["listener"])
        transfers = metrics.counter(
            "kairos_ftp_transfers_total",
            "FTP data transfers by direction and outcome.",
            ["listener", "direction", "outcome"],
        )
        data = metrics.counter(
            "kairos_ftp_bytes_total",
            "Bytes relayed on FTP data connections.",
            ["listener", "direction"],
        )
        errors = metrics.counter(
            "kairos_ftp_errors_total", "FTP session errors by kind.", ["listener", "kind"]
        )
        self.sessions: Any = sessions.labels(listener)
        self.active: Any = active.labels(listener)
        self.transfers: dict[tuple[str, str], Any] = {
            (d, o): transfers.labels(listener, d, o) for d in DIRECTIONS for o in OUTCOMES
        }
        self.bytes_down: Any = data.labels(listener, "download")
        self.bytes_up: Any = data.labels(listener, "upload")
        self.errors: dict[str, Any] = {kind: errors.labels(listener, kind) for kind in ERROR_KINDS}

    def error(self, kind: str) -> None:
        """Count one error of `kind` (one of ERROR_KINDS)."""
        self.errors[kind].inc()

    def transfer(self, direction: str, outcome: str, client_bytes: int, backend_bytes: int) -> None:
        """Count one finished transfer and the bytes it moved."""
        self.transfers[(direction, outcome)].inc()
        if client_bytes:
            self.bytes_up.inc(client_bytes)
        if backend_bytes:
            self.bytes_down.inc(backend_bytes)
