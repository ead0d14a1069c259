"""External services tests may need (Redis, Chromium): skip locally, fail under CI."""

from __future__ import annotations

import os
import socket

import pytest

REQUIRE_ENV = "KAIROS_REQUIRE_SERVICES"


def require_service(name: str, available: bool, how: str = "") -> None:
    """Skip the test when `name` is missing, unless KAIROS_REQUIRE_SERVICES=1 makes it a failure."""
    if available:
        return
    message = f"{name} is not available" + (f" ({how})" if how else "")
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{message}, and {REQUIRE_ENV}=1 requires it")
    pytest.skip(message)


def redis_available(host: str = "127.0.0.1", port: int = 6379, timeout: float = 0.5) -> bool:
    """True when a Redis server answers PING at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False
