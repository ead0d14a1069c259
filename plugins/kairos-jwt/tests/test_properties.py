"""JWT properties: any token string is rejected with the 401 auth failure; valid ones verify."""

from __future__ import annotations

import asyncio
import base64
from types import SimpleNamespace
from typing import Any

import jwt
import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import strategies as st
from kairos_jwt import JwtConfig, TokenVerifier, build_keyring
from kairos_jwt.authenticator import JwtAuthenticator
from multidict import CIMultiDict

from kairos_core import AuthFailure
from kairos_core.testing.properties import bounded

BOUNDED = bounded(300, HealthCheck.function_scoped_fixture)
SECRET = "0123456789abcdef0123456789abcdef-kairos-property-secret"
NOW = 1_700_000_000.0
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(**claims: Any) -> str:
    """A valid HS256 token for `alice` (overridable claims)."""
    body = {"sub": "alice", "iat": int(NOW), "exp": int(NOW) + 3600, **claims}
    return jwt.encode(body, SECRET, algorithm="HS256")


@pytest.fixture(scope="module")
def authenticator() -> JwtAuthenticator:
    """A `jwt` authenticator with one HS256 key and a fixed clock, cache on."""
    config = JwtConfig.model_validate({"keys": [{"secret": SECRET}]})
    verifier = TokenVerifier(config, build_keyring(config, None), {}, lambda: NOW)
    return JwtAuthenticator(config, verifier)


def outcome(authenticator: JwtAuthenticator, header: str) -> str | AuthFailure:
    """The consumer name, or the AuthFailure raised, for a request with this Authorization."""
    request = SimpleNamespace(headers=CIMultiDict({"Authorization": header}))
    ctx: Any = SimpleNamespace(request=request, headers=CIMultiDict(), claims=None)
    try:
        consumer = asyncio.run(authenticator.authenticate(ctx))
    except AuthFailure as failure:
        return failure
    assert consumer is not None
    return consumer.name


def assert_rejected(result: str | AuthFailure) -> None:
    assert isinstance(result, AuthFailure), result
    assert result.status == 401
    assert result.challenge and result.challenge.startswith("Bearer realm=")


@BOUNDED
@given(
    st.text(max_size=120)
    | st.text(B64URL + ".", max_size=200)
    | st.binary(max_size=120).map(lambda b: b.decode("latin-1"))
)
@example("a.b.c")
@example("e30.e30.")
@example(b64(b"[" * 5000) + ".e30.")  # deep JSON header: RecursionError (500) before the fix
@example(b64(b'{"alg":"none"}') + "." + b64(b"{}") + ".")
@example(b64(b'{"alg":"HS256","crit":["exp"]}') + ".e30.AAAA")
def test_arbitrary_tokens_get_the_401_auth_failure(
    authenticator: JwtAuthenticator, token: str
) -> None:
    if not token.strip() or any(c in token for c in "\r\n"):
        token = "x" + token.strip()
    assert_rejected(outcome(authenticator, f"Bearer {token}"))


@BOUNDED
@given(st.data(), st.sampled_from(["flip", "cut", "insert", "swap"]))
def test_mutated_valid_tokens_are_rejected(
    authenticator: JwtAuthenticator, data: st.DataObject, how: str
) -> None:
    token = mint(n=data.draw(st.integers(0, 10**6)))
    assert outcome(authenticator, f"Bearer {token}") == "alice"
    index = data.draw(st.integers(0, len(token) - 1))
    if how == "flip":
        choices = st.sampled_from(B64URL + ".").filter(lambda c: c != token[index])
        mutated = token[:index] + data.draw(choices) + token[index + 1 :]
    elif how == "cut":
        mutated = token[:index]
    elif how == "insert":
        mutated = token[:index] + data.draw(st.sampled_from(B64URL + ".")) + token[index:]
    else:
        head, _payload, signature = token.split(".")
        mutated = ".".join([head, b64(b'{"sub":"admin"}'), signature])
    if mutated.strip() and not same_bytes(mutated, token):
        assert_rejected(outcome(authenticator, f"Bearer {mutated}"))


def same_bytes(mutated: str, token: str) -> bool:
    """Whether a mutation only touched the unused low bits of a base64url segment's last char."""
    try:
        parts = [base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) for p in mutated.split(".")]
        originals = [base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) for p in token.split(".")]
    except ValueError:
        return False
    return parts == originals


@BOUNDED
@given(st.text(max_size=20), st.integers(0, 2**40))
def test_valid_tokens_verify(subject: str, extra: int) -> None:
    config = JwtConfig.model_validate({"keys": [{"secret": SECRET}], "consumer_claim": "cid"})
    verifier = TokenVerifier(config, build_keyring(config, None), {}, lambda: NOW)
    authenticator = JwtAuthenticator(config, verifier)
    result = outcome(authenticator, f"Bearer {mint(cid='c' + str(extra), note=subject)}")
    assert result == f"c{extra}"
