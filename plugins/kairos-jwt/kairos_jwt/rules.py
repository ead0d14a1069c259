"""Authorization rules on claims, compiled once into plain predicates."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from kairos_jwt import errors
from kairos_jwt.config import ClaimRule
from kairos_jwt.errors import TokenRejected

_MISSING = object()
Predicate = Callable[[Any], bool]


def claim_value(claims: dict[str, Any], path: tuple[str, ...]) -> Any:
    """The claim at a dotted path, or a sentinel when absent."""
    value: Any = claims
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _members(value: Any) -> frozenset[Any] | None:
    """A claim viewed as a set: a list's items, or a space-separated string's words."""
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list):
        return frozenset(v for v in value if isinstance(v, (str, int, float, bool)))
    return None


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and bool(a == b)


def _predicate(rule: ClaimRule) -> tuple[Predicate, str]:
    if "equals" in rule.model_fields_set:
        expected = rule.equals
        return (lambda v: _same(v, expected)), f"{rule.claim} equals {expected!r}"
    if rule.one_of is not None:
        options = list(rule.one_of)
        return (lambda v: any(_same(v, o) for o in options)), f"{rule.claim} is one of {options!r}"
    if "contains" in rule.model_fields_set:
        item = rule.contains

        def contains(v: Any) -> bool:
            members = _members(v)
            return members is not None and item in members

        return contains, f"{rule.claim} contains {item!r}"
    if rule.contains_any is not None:
        wanted = frozenset(rule.contains_any)

        def contains_any(v: Any) -> bool:
            members = _members(v)
            return members is not None and not members.isdisjoint(wanted)

        return contains_any, f"{rule.claim} contains any of {sorted(map(str, wanted))!r}"
    assert rule.contains_all is not None
    needed = frozenset(rule.contains_all)

    def contains_all(v: Any) -> bool:
        members = _members(v)
        return members is not None and needed <= members

    return contains_all, f"{rule.claim} contains all of {sorted(map(str, needed))!r}"


class ClaimRules:
    """Every rule must hold; the first that fails becomes a 403 naming the rule."""

    def __init__(self, rules: Sequence[ClaimRule]) -> None:
        self._checks = [(tuple(rule.claim.split(".")), *_predicate(rule)) for rule in rules]

    def __bool__(self) -> bool:
        return bool(self._checks)

    def check(self, claims: dict[str, Any]) -> None:
        """Raise TokenRejected (403) when a rule fails."""
        for path, predicate, text in self._checks:
            value = claim_value(claims, path)
            if value is _MISSING or not predicate(value):
                raise TokenRejected(
                    errors.FORBIDDEN, f"token does not satisfy the rule: {text}", status=403
                )
