"""The bytes stored in Redis: round trips, compression, and refusal of anything else."""

from __future__ import annotations

import pytest
from kairos_cache.codec import CorruptEntry, decode, encode
from kairos_cache.entry import CachedResponse, VaryMarker

ENTRY = CachedResponse(
    status=200,
    headers=(("Content-Type", "text/plain"), ("ETag", '"x"'), ("X-Émoji", "☕")),
    body=b"hello " * 500,
    response_time=1700000000.5,
    initial_age=3.0,
    freshness=60.0,
    stale_while_revalidate=10.0,
    stale_if_error=0.0,
    must_revalidate=True,
    etag='"x"',
    last_modified=None,
    vary=("accept-language",),
    storage_ttl=70.0,
)


@pytest.mark.parametrize("compress_min", [None, 0, 10**9])
def test_entry_round_trip(compress_min: int | None) -> None:
    data = encode(ENTRY, compress_min)
    assert decode(data) == ENTRY
    assert (data[3] == 1) == (compress_min == 0)
    if compress_min == 0:
        assert len(data) < len(ENTRY.body)


def test_marker_round_trip() -> None:
    assert decode(encode(VaryMarker(("accept", "accept-language")))) == VaryMarker(
        ("accept", "accept-language")
    )


@pytest.mark.parametrize(
    "data", [b"", b"garbage", b"KC2\x00\x00\x00\x00\x05[1,2", b"KC2\x01notzlib"]
)
def test_anything_else_is_refused(data: bytes) -> None:
    with pytest.raises(CorruptEntry):
        decode(data)
