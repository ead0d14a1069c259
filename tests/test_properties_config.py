"""Config loader properties: any document gives a valid config or a ConfigError naming file and field."""

from __future__ import annotations

import json
from typing import Any

import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from kairos_core.config.errors import ConfigError, format_loc
from kairos_core.config.loader import LoadedConfig, load_config_text
from kairos_core.testing.properties import bounded

BOUNDED = bounded(100)
SOURCE = "fuzzed/kairos.yaml"

# Field names of the real models (and the seed format), so documents reach deep validation.
KEYS = [
    *("version", "listeners", "admin", "server", "upstreams", "routes", "plugins", "consumers"),
    *("routers", "jwt", "rate_limit", "name", "path", "prefix", "methods", "hosts", "headers"),
    *("priority", "upstream", "backends", "url", "weight", "balancer", "port", "host", "config"),
    *("timeouts", "connect", "retry", "split", "mirror", "websocket", "tls", "enabled", "token"),
    *("trusted_proxies", "max_body_size", "consumer_header", "protocol", "strip_prefix", "x"),
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["/", "/a/{id}", "http://127.0.0.1:1", "GET", "*.example.com", "1kb"]),
    st.sampled_from(["${HOME}", "${NOPE}", "${NOPE:-x}", "$$", "0.0.0.0/0", "round_robin"]),
    st.text(max_size=12),
)
DOCS = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=5),
    ),
    max_leaves=25,
)
ALIAS_BOMB = 'a0: &a0 ["x","x","x","x","x","x","x","x","x"]\n' + "".join(
    f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9)
)
VALID: dict[str, Any] = {
    "routes": [
        {"path": "/a/{id}", "methods": ["GET"], "upstream": {"backends": [{"url": "http://x:1"}]}}
    ]
}


def check(text: str) -> None:
    """The property: a LoadedConfig, or a ConfigError whose every line names file and field."""
    try:
        loaded: LoadedConfig | ConfigError = load_config_text(text, SOURCE, env={"HOME": "/h"})
    except ConfigError as exc:
        loaded = exc
    if isinstance(loaded, ConfigError):
        assert loaded.source == SOURCE
        assert loaded.problems
        assert len(str(loaded).splitlines()) >= len(loaded.problems)
        for problem in loaded.problems:
            assert isinstance(problem.loc, tuple)
            assert problem.message
            line = problem.render(SOURCE)
            assert line.startswith(SOURCE)
            assert f": {format_loc(problem.loc)}: " in line
        return
    assert isinstance(loaded, LoadedConfig)
    assert loaded.source == SOURCE


@BOUNDED
@given(DOCS, st.booleans())
def test_structured_documents_load_or_fail_with_a_config_error(doc: Any, as_json: bool) -> None:
    check(json.dumps(doc) if as_json else yaml.safe_dump(doc))


@BOUNDED
@given(st.text(max_size=200))
@example("? [a, b]\n: 1\n")  # unhashable YAML key: TypeError before the fix
@example("? {a: 1}\n: 2\n")
@example("[" * 3000)  # deep JSON: RecursionError before the fix
@example("a:" + " [" * 3000)  # deep YAML
@example("a: &a [*a]\n")
@example(
    ALIAS_BOMB
)  # 9**9 values from 9 aliases: hung the loader (and admin validate) before  # a self-referencing alias: endless interpolation
@example('{"a": 1, "a": 2}')
@example("a: 1\na: 2\n")
def test_arbitrary_text_loads_or_fails_with_a_config_error(text: str) -> None:
    check(text)


@BOUNDED
@given(st.lists(st.tuples(st.sampled_from([*KEYS, 0, 1]), SCALARS | DOCS), min_size=1, max_size=3))
def test_mutated_valid_config_loads_or_names_the_field(edits: list[tuple[Any, Any]]) -> None:
    doc = json.loads(json.dumps(VALID))
    route = doc["routes"][0]
    targets = [doc, route, route["upstream"], route["upstream"]["backends"][0]]
    for index, (key, value) in enumerate(edits):
        target = targets[index % len(targets)]
        target[key if isinstance(key, str) else KEYS[key]] = value
    check(yaml.safe_dump(doc))


def test_the_unmutated_config_is_valid() -> None:
    loaded = load_config_text(yaml.safe_dump(VALID), SOURCE)
    assert loaded.config.routes[0].path == "/a/{id}"
