"""Config files: YAML/JSON parsing, ${ENV} interpolation and errors that point at the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kairos_core.config import ConfigError, load_config, load_config_text

VALID = """
upstreams:
  users:
    backends:
      - url: http://127.0.0.1:9001
routes:
  - name: users
    path: /api/users/{id}
    upstream: users
"""


def test_valid_yaml_loads() -> None:
    loaded = load_config_text(VALID, "gw.yaml")
    assert loaded.config.routes[0].display_name == "users"
    assert loaded.config.upstreams["users"].backends[0].url == "http://127.0.0.1:9001"


def test_error_names_file_field_and_line() -> None:
    text = VALID.replace("url: http://127.0.0.1:9001", "url: gopher://nowhere")
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "gw.yaml")
    message = str(info.value)
    assert message.startswith("gw.yaml:5: upstreams.users.backends[0].url:")
    assert "http://" in message


def test_unknown_field_is_an_error_with_its_line() -> None:
    text = VALID + "    timeoutz: 3\n"
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "gw.yaml")
    problem = info.value.problems[0]
    assert problem.loc == ("routes", 0, "timeoutz")
    assert problem.line == 10
    assert "unknown field" in problem.message


def test_every_problem_is_reported_at_once() -> None:
    text = """
routes:
  - path: nope
    upstream: missing
  - prefix: /x
    upstream: {backends: []}
"""
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "many.yaml")
    locs = {p.loc for p in info.value.problems}
    assert ("routes", 0, "path") in locs
    assert ("routes", 1, "upstream", "backends") in locs


def test_unknown_upstream_reference() -> None:
    text = "routes:\n  - path: /a\n    upstream: nope\n"
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "ref.yaml")
    problem = info.value.problems[0]
    assert problem.loc == ("routes", 0, "upstream")
    assert problem.line == 3
    assert "unknown upstream 'nope'" in problem.message


def test_env_interpolation_with_default_and_escape() -> None:
    text = """
admin:
  token: ${ADMIN_TOKEN}
routes:
  - path: /a
    upstream: {backends: [{url: "${BACKEND:-http://127.0.0.1:9}"}]}
    host_header: "cost-$$5"
"""
    loaded = load_config_text(text, "env.yaml", env={"ADMIN_TOKEN": "s3cret"})
    assert loaded.config.admin.token is not None
    assert loaded.config.admin.token.get_secret_value() == "s3cret"
    route = loaded.config.routes[0]
    assert not isinstance(route.upstream, str)
    assert route.upstream.backends[0].url == "http://127.0.0.1:9"
    assert route.host_header == "cost-$5"


def test_missing_env_variable_is_located() -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text("admin:\n  token: ${NOPE_NOT_SET}\n", "env.yaml", env={})
    problem = info.value.problems[0]
    assert problem.loc == ("admin", "token")
    assert problem.line == 2
    assert "NOPE_NOT_SET" in problem.message


def test_json_files_load_with_lines(tmp_path: Path) -> None:
    path = tmp_path / "gw.json"
    data = {
        "routes": [{"path": "/a", "upstream": {"backends": [{"url": "http://x:1"}]}, "bogus": 1}]
    }
    path.write_text(json.dumps(data, indent=2))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    problem = info.value.problems[0]
    assert problem.loc == ("routes", 0, "bogus")
    assert problem.line is not None
    assert str(path) in str(info.value)


def test_syntax_errors_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"bad.yaml:3: \(top level\): invalid YAML"):
        load_config_text("routes:\n  - path: /a\n  bad: [\n", "bad.yaml")
    with pytest.raises(ConfigError, match="invalid JSON"):
        load_config_text('{"routes": [}', "bad.json")
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="duplicate key 'routes'"):
        load_config_text("routes: []\nroutes: []\n", "dup.yaml")


def test_admin_on_public_address_needs_a_token() -> None:
    with pytest.raises(ConfigError, match=r"admin: admin listens on non-loopback address"):
        load_config_text("admin:\n  host: 0.0.0.0\n", "admin.yaml")
    loaded = load_config_text("admin:\n  host: 0.0.0.0\n  token: t\n", "admin.yaml")
    assert loaded.config.admin.host == "0.0.0.0"


def test_route_rules() -> None:
    cases = {
        "routes:\n  - {path: /a, prefix: /b, upstream: {backends: [{url: 'http://x:1'}]}}": "exactly one of",
        "routes:\n  - {path: /a, methods: [FETCH], upstream: {backends: [{url: 'http://x:1'}]}}": "unknown HTTP method",
        "routes:\n  - {path: /a, strip_prefix: true, upstream: {backends: [{url: 'http://x:1'}]}}": "strip_prefix needs",
        "routes:\n  - {path: /a, hosts: ['bad host'], upstream: {backends: [{url: 'http://x:1'}]}}": "invalid host",
        "routes:\n  - {path: /a, upstream: {backends: [{url: 'http://x:1/path'}]}}": "origin only",
        "routes:\n  - {name: a, path: /a, upstream: {backends: [{url: 'http://x:1'}]}}\n  - {name: a, path: /b, upstream: {backends: [{url: 'http://x:1'}]}}": "duplicate route name",
    }
    for text, expected in cases.items():
        with pytest.raises(ConfigError, match=expected):
            load_config_text(text, "r.yaml")
