"""The header writer: the memoised one-limit path writes exactly what the general path writes."""

from __future__ import annotations

import itertools

import pytest
from kairos_ratelimit.algorithms import Decision
from kairos_ratelimit.config import LimitSpec
from kairos_ratelimit.headers import MEMO_SIZE, HeaderWriter
from multidict import CIMultiDict

SPEC = LimitSpec.model_validate({"rate": "100/s", "burst": 150})


def written(writer: HeaderWriter, decision: Decision, one: bool) -> list[tuple[str, str]]:
    headers: CIMultiDict[str] = CIMultiDict({"Content-Type": "text/plain", "RateLimit": "x"})
    if one:
        writer.write_one(headers, decision)
    else:
        writer.write(headers, [(0, decision)])
    return list(headers.items())


@pytest.mark.parametrize("style", ["ietf", "classic", "both"])
def test_write_one_matches_write(style: str) -> None:
    writer = HeaderWriter([SPEC], style)
    remainders = [-3, -1, 0, 1, 2, 99, 149, 150]
    resets = [0, 1, 999_999, 1_000_000, 1_000_001, 1_499_999, 2_000_000, 4_999_999]
    for remaining, reset_us in itertools.product(remainders, resets):
        decision = Decision(remaining > 0, 150, remaining, reset_us)
        expected = written(writer, decision, one=False)
        assert written(writer, decision, one=True) == expected
        assert written(writer, decision, one=True) == expected  # now from the memo


def test_reset_rounds_up_per_decision_not_per_memo_entry() -> None:
    writer = HeaderWriter([SPEC], "classic")
    first = dict(written(writer, Decision(True, 150, 10, 1_000_000), one=True))
    second = dict(written(writer, Decision(True, 150, 10, 1_000_001), one=True))
    assert first["X-RateLimit-Reset"] == "1"
    assert second["X-RateLimit-Reset"] == "2"


def test_memo_stays_bounded() -> None:
    writer = HeaderWriter([SPEC], "both")
    for remaining in range(MEMO_SIZE * 3):
        written(writer, Decision(True, 150, remaining, 1), one=True)
    assert len(writer._memo) <= MEMO_SIZE
