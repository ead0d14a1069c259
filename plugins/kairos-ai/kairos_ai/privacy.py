"""What never reaches the model: withheld headers, masked query values, redacted text."""

from __future__ import annotations

import re

from kairos_ai.config import ALWAYS_DENIED_HEADERS, PrivacyConfig

EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
CARD_CANDIDATE = re.compile(r"(?<![\d])\d(?:[ -]?\d){12,18}(?![\d])")
_TRAILING_FRAGMENT = re.compile(r"(?:\d[\d -]*)?[^\s,;:{}\[\]\"'&=<>()]*\Z")


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum every payment card number satisfies."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


class Redactor:
    """Applies a pool's privacy settings; built once per balancer."""

    __slots__ = ("_cards", "_deny_headers", "_deny_query", "_text", "replacement")

    def __init__(self, config: PrivacyConfig) -> None:
        self.replacement = config.replacement
        texts = ([EMAIL] if config.redact_emails else []) + list(config.patterns)
        self._text = re.compile("|".join(f"(?:{p})" for p in texts)) if texts else None
        self._cards = config.redact_card_numbers
        self._deny_headers = _any_of(config.deny_headers)
        self._deny_query = _any_of(config.deny_query_params)

    def text(self, value: str) -> str:
        """`value` with e-mail addresses, card numbers and configured patterns masked."""
        if self._text is not None:
            value = self._text.sub(self.replacement, value)
        if self._cards:
            value = CARD_CANDIDATE.sub(self._card, value)
        return value

    def excerpt(self, value: str, truncated: bool) -> str:
        """Redact a body excerpt; a cut-off last word (or digit run) is dropped, so no fragment
        of an address or card number slips through unrecognised."""
        if truncated:
            value = _TRAILING_FRAGMENT.sub("", value)
        return self.text(value)

    def header_allowed(self, name: str) -> bool:
        """Whether a header may be sent at all (its value is still redacted)."""
        lowered = name.lower()
        if lowered in ALWAYS_DENIED_HEADERS:
            return False
        return self._deny_headers is None or not self._deny_headers.search(lowered)

    def query_value(self, name: str, value: str) -> str:
        """A query parameter's value as the model may see it."""
        if self._deny_query is not None and self._deny_query.search(name):
            return self.replacement
        return self.text(value)

    def _card(self, found: re.Match[str]) -> str:
        digits = found.group().replace(" ", "").replace("-", "")
        return self.replacement if luhn_valid(digits) else found.group()


def _any_of(patterns: list[str]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)
