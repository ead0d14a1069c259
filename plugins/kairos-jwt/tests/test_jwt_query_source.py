"""The query-string token reader decodes only its parameter, exactly as `parse_qsl` would."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from kairos_jwt.sources import query_parameter

QUERIES = [
    "",
    "access_token=abc.def.ghi",
    "id=1&access_token=abc.def-ghi_jkl",
    "access_token=&access_token=second",
    "access_token&x=1",
    "x=1&&access_token=a%2Eb.c",
    "access%5Ftoken=encoded-name",
    "access+token=space-in-name",
    "access_token=plus+sign%2B",
    "access_token=a=b=c",
    "other=access_token%3Dnot-me&access_token=me",
    "access_token=%ZZbad%escape",
    "ACCESS_TOKEN=case",
    "access_token=%E2%9C%93",
    "a=1;access_token=semicolon-is-not-a-separator",
]


def reference(query: str, name: str) -> str | None:
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == name:
            return value or None
    return None


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("name", ["access_token", "access token", "x"])
def test_matches_parse_qsl(query: str, name: str) -> None:
    assert query_parameter(query, name) == reference(query, name)
