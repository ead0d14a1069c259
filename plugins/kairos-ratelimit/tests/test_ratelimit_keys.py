"""Key functions: the default `[ip]` key gives what the general builder gives."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from kairos_ratelimit.keys import _part, _shorten, key_function


@pytest.mark.parametrize("ip", ["127.0.0.1", "2001:db8::1", "", "unix", "x" * 97, "y" * 96])
def test_ip_key_matches_the_general_builder(ip: str) -> None:
    ctx: Any = SimpleNamespace(client_ip=ip)
    general = _part("ip")(ctx)
    expected = None if general is None else _shorten(general)
    assert key_function(["ip"])(ctx) == expected
    if len(ip) > 96:
        assert expected is not None and expected.startswith("#")
