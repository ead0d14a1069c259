"""Settings are checked when the config loads, with errors that name the field."""

from __future__ import annotations

from typing import Any

import kairos_transform
import pytest
from kairos_transform.jsonpath import WILDCARD, parse_path, remove_field, rename_field, set_field
from kairos_transform.templates import Group, Variable, parse


@pytest.mark.parametrize(
    ("config", "where", "message"),
    [
        (
            {"request": {"headers": [{"action": "set", "name": "X", "value": "$(nope)"}]}},
            r"request\.headers\[0\]\.set\.value",
            "unknown template variable 'nope'",
        ),
        (
            {"request": {"headers": [{"action": "shout", "name": "X"}]}},
            r"request\.headers\[0\]",
            "does not match any of the expected tags",
        ),
        (
            {"request": {"headers": [{"action": "set", "name": "Bad Name", "value": "1"}]}},
            r"request\.headers",
            "'Bad Name' is not a valid header name",
        ),
        (
            {"response": {"headers": [{"action": "remove", "name": "Content-Length"}]}},
            r"response\.headers",
            "managed by the gateway",
        ),
        (
            {"request": {"path": {"pattern": "^/(a)$", "replacement": "/$2"}}},
            r"request\.path\[0\]",
            "group 2 does not exist",
        ),
        (
            {"request": {"path": {"pattern": "^/(?P<id>.+)$", "replacement": "/$idx"}}},
            r"request\.path\[0\]",
            r"'/\$idx' refers to group 'idx', which the pattern does not define",
        ),
        (
            {"request": {"path": {"pattern": "^/(.*)$", "replacement": "/x?y=$1"}}},
            r"request\.path\[0\]",
            r"cannot contain '\?' or '#': use `query` actions",
        ),
        (
            {"request": {"path": {"pattern": "^/(", "replacement": "/"}}},
            r"request\.path\[0\]",
            "invalid regular expression",
        ),
        (
            {"request": {"body": [{"action": "set", "path": "a..b", "value": 1}]}},
            r"request\.body\[0\]\.set\.path",
            "empty segment",
        ),
        (
            {"request": {"body": [{"action": "rename", "path": "a.*.b", "to": "c.*.b"}]}},
            r"request\.body\[0\]\.rename",
            "same object",
        ),
        (
            {
                "request": {
                    "headers": [{"action": "remove", "name": "X", "when": {"status": [404]}}]
                }
            },
            r"request",
            "`when.status` only applies to response actions",
        ),
        (
            {"response": {"status": [{"from": "6xx", "to": 200}]}},
            r"response\.status\[0\]\.from",
            "use a status such as 404",
        ),
        (
            {"response": {"status": [{"from": 404, "to": 200, "colour": "red"}]}},
            r"response\.status\[0\]\.colour",
            "unknown field",
        ),
    ],
)
async def test_bad_settings_are_reported_with_their_location(
    kairos_gateway, echo_backend, route, config: dict[str, Any], where: str, message: str
) -> None:
    with pytest.raises(Exception, match=rf"routes\[0\]\.plugins\[0\]\.config.*{where}") as caught:
        await kairos_gateway(route(echo_backend, config), plugins=[kairos_transform])
    assert caught.match(message)


def test_template_parsing() -> None:
    parts = parse("a $$ b $(claims.sub|anon) $1 US$")
    assert parts[0] == "a $ b "
    assert isinstance(parts[1], Variable)
    assert (parts[1].name, parts[1].default) == ("claims.sub", "anon")
    assert parts[2] == " $1 US$"  # groups only exist in replacements


def test_replacement_parsing() -> None:
    import re

    pattern = re.compile(r"^/(?P<client_ip>x)/(\d+)$")
    parts = parse("/${client_ip}/$client_ip/$2/${1}x/$(client_ip)", pattern)
    kinds = [type(p).__name__ for p in parts]
    assert kinds == [
        "str",
        "Group",
        "str",
        "Group",
        "str",
        "Group",
        "str",
        "Group",
        "str",
        "Variable",
    ]
    assert [p.key for p in parts if isinstance(p, Group)] == ["client_ip", "client_ip", 2, 1]
    with pytest.raises(ValueError, match="does not define"):
        parse("/${nope}", pattern)


def test_json_paths() -> None:
    assert parse_path(r"a.b\.c.*.\*") == ("a", "b.c", WILDCARD, "*")
    doc: Any = {"a": [{"x": 1}, {"x": 2}, "text"], "b": "scalar"}
    set_field(doc, ("b", "c"), 1)  # cannot go through a string: nothing happens
    assert doc["b"] == "scalar"
    set_field(doc, ("a", "-1"), "last")
    assert doc["a"][-1] == "last"
    remove_field(doc, ("a", WILDCARD, "x"))
    assert doc["a"] == [{}, {}, "last"]
    rename_field(doc, ("a",), ("z", "a"))
    assert doc == {"b": "scalar", "z": {"a": [{}, {}, "last"]}}
    set_field(doc, ("z", "a", "7"), 1)  # out of range: nothing happens
    assert doc["z"]["a"] == [{}, {}, "last"]


async def test_empty_settings_pass_requests_through(
    kairos_gateway, echo_backend, http, route
) -> None:
    empty = {"request": {"headers": [], "query": [], "path": []}, "response": {"status": []}}
    gw = await kairos_gateway(route(echo_backend, empty), plugins=[kairos_transform])
    async with http.get(gw.url + "/a?b=1") as response:
        assert response.status == 200
    assert echo_backend.records[-1].raw_path == "/a?b=1"
