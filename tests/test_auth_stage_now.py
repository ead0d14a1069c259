"""The authentication stage's path without awaiting (`authenticate_now`), and its fallbacks."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest
from multidict import CIMultiDict

from kairos_core import AuthDeferred, AuthFailure, Consumer, Response
from kairos_core.compiled import compiled_modules
from kairos_core.pipeline import AuthLink, auth_stage

pytestmark = pytest.mark.skipif(
    "kairos_core.context" in compiled_modules(),
    reason="these tests hand the stage a stand-in context, and compiled code accepts only a "
    "real RequestContext; the gateway tests of every auth plugin cover the compiled stage",
)


class Method:
    """A test authenticator: `now` is what the quick check does, `later` what the awaited one does."""

    def __init__(self, name: str, now: Any, later: Any = None, quick: bool = True) -> None:
        self.challenge = name
        self.now, self.later = now, later
        self.calls: list[str] = []
        if not quick:
            self.authenticate_now = None  # type: ignore[assignment]

    def authenticate_now(self, ctx: Any) -> Consumer | None:
        self.calls.append("now")
        return self._result(self.now)

    async def authenticate(self, ctx: Any) -> Consumer | None:
        self.calls.append("later")
        return self._result(self.later)

    @staticmethod
    def _result(outcome: Any) -> Consumer | None:
        if isinstance(outcome, BaseException) or (
            isinstance(outcome, type) and issubclass(outcome, BaseException)
        ):
            raise outcome
        return outcome


class Ctx:
    def __init__(self) -> None:
        self.headers: CIMultiDict[str] = CIMultiDict({"X-Claim": "spoofed"})
        self.consumer: Consumer | None = None
        self.request_id = "r1"


async def chain(ctx: Any) -> Response:
    return Response(200, CIMultiDict({"X-Who": ctx.consumer.name}), b"")


def run(*methods: Method, header: str | None = "X-Consumer") -> tuple[Response, Ctx, Any]:
    for method in methods:
        method.gateway_headers = ("X-Claim",)  # type: ignore[attr-defined]
    links = [AuthLink(m.challenge, 10 - i, "route", m) for i, m in enumerate(methods)]  # type: ignore[arg-type]
    handler = auth_stage(links, chain, {}, header)
    ctx = Ctx()
    return asyncio.run(_await(handler(ctx))), ctx, handler


async def _await(awaitable: Any) -> Response:
    return await awaitable


def test_accepted_without_a_coroutine_of_its_own() -> None:
    method = Method("A", Consumer("alice"))
    response, ctx, handler = run(method)
    assert not inspect.iscoroutinefunction(handler)
    assert response.status == 200
    assert response.headers["X-Who"] == "alice"
    assert ctx.headers["X-Consumer"] == "alice"
    assert "X-Claim" not in ctx.headers
    assert method.calls == ["now"]


def test_a_failure_then_another_method_accepts() -> None:
    first = Method("A", AuthFailure("bad", 401))
    second = Method("B", Consumer("bob"))
    response, _, _ = run(first, second)
    assert response.status == 200
    assert (first.calls, second.calls) == (["now"], ["now"])


def test_deferred_continues_awaiting_from_that_method() -> None:
    first = Method("A", None)
    second = Method("B", AuthDeferred, Consumer("carol"))
    response, ctx, _ = run(first, second)
    assert response.status == 200
    assert ctx.consumer == Consumer("carol")
    assert first.calls == ["now"]  # not asked twice
    assert second.calls == ["now", "later"]


def test_the_first_failure_survives_a_deferral() -> None:
    first = Method("A", AuthFailure("not yours", 403, None, "forbidden"))
    second = Method("B", AuthDeferred, None)
    response, _, _ = run(first, second)
    assert response.status == 403
    assert b"not yours" in response.body  # type: ignore[operator]


def test_a_method_without_the_quick_check_makes_the_route_await() -> None:
    first = Method("A", None, None)
    second = Method("B", None, Consumer("dave"), quick=False)
    response, _, _ = run(first, second)
    assert response.status == 200
    assert first.calls == ["later"]
    assert second.calls == ["later"]


def test_no_credential_gives_401_with_every_challenge() -> None:
    response, _, _ = run(Method("A", None), Method("B", None))
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == "A, B"
