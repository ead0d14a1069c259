"""The request features a decision is made from: read from a live request or a CLI sample."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, unquote

from kairos_ai.config import CacheConfig, RequestFeatures
from kairos_ai.privacy import Redactor
from kairos_core import RequestContext


@dataclass(frozen=True, slots=True)
class RequestSample:
    """One request as the selector sees it (unredacted; only `describe` output goes out)."""

    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    """Only the headers the prompt or the cache key use, names lower-cased."""
    consumer: str | None = None
    content_type: str = ""
    content_length: int | None = None
    body: bytes | None = None
    """The leading body bytes (at most body_bytes + 1), when they were read."""


class SampleReader:
    """Builds samples, cache keys and the request document of the prompt; built once per pool."""

    def __init__(self, features: RequestFeatures, cache: CacheConfig, redactor: Redactor) -> None:
        self.features = features
        self.redactor = redactor
        key_headers = [f[7:].lower() for f in cache.key if f.startswith("header:")]
        self._wanted = tuple(dict.fromkeys([*features.headers, *key_headers]))
        self._prompt_headers = frozenset(
            name for name in features.headers if redactor.header_allowed(name)
        )
        self._textual = tuple(t.lower() for t in features.body_content_types)
        self.key_needs_body = "body" in cache.key
        self._key_parts: tuple[Callable[[RequestSample], str], ...] = tuple(
            _key_part(feature) for feature in cache.key
        )

    def from_context(self, ctx: RequestContext) -> RequestSample:
        """The sample of a live request, body not read yet."""
        headers = ctx.headers
        picked = tuple((name, value) for name in self._wanted for value in headers.getall(name, ()))
        length = headers.get("Content-Length")
        return RequestSample(
            ctx.method,
            ctx.path,
            ctx.query_string,
            picked,
            ctx.consumer.name if ctx.consumer is not None else None,
            headers.get("Content-Type", ""),
            int(length) if length and length.isdigit() else None,
        )

    def from_mapping(self, sample: Mapping[str, Any]) -> RequestSample:
        """A sample given as a dict (method, path, query, headers, body) by `kairos routes test`."""
        raw_headers: Sequence[tuple[str, str]] = sample.get("headers") or ()
        headers = [(str(n).lower(), str(v)) for n, v in raw_headers]
        wanted = set(self._wanted)
        body = bytes(sample.get("body") or b"")
        found = dict(headers)
        return RequestSample(
            str(sample.get("method", "GET")).upper(),
            str(sample.get("path", "/")),
            str(sample.get("query", "")),
            tuple((n, v) for n, v in headers if n in wanted),
            sample.get("consumer"),
            found.get("content-type", ""),
            len(body),
            body[: self.features.body_bytes + 1] if self.wants_body_of(found) else None,
        )

    def wants_body(self, sample: RequestSample) -> bool:
        """Whether the body excerpt of this request should be read."""
        return bool(self.features.body_bytes) and self._is_textual(sample.content_type)

    def wants_body_of(self, headers: Mapping[str, str]) -> bool:
        """`wants_body` for a plain header mapping (lower-case names)."""
        return bool(self.features.body_bytes) and self._is_textual(headers.get("content-type", ""))

    async def read_body(self, ctx: RequestContext, sample: RequestSample) -> RequestSample:
        """The sample with its leading body bytes (peeked: the upstream still gets them all)."""
        if not ctx.has_body():
            return replace(sample, body=b"")
        return replace(sample, body=await ctx.peek_body(self.features.body_bytes + 1))

    def cache_key(self, sample: RequestSample) -> tuple[str, ...]:
        """The features that make two requests share a decision."""
        return tuple(part(sample) for part in self._key_parts)

    def document(self, sample: RequestSample) -> dict[str, Any]:
        """The request as the model is shown it: only configured features, redacted."""
        features = self.features
        redactor = self.redactor
        doc: dict[str, Any] = {}
        if features.method:
            doc["method"] = sample.method
        if features.path:
            doc["path"] = redactor.text(unquote(sample.path))
        if features.query and sample.query:
            doc["query"] = [
                [redactor.text(name), redactor.query_value(name, value)]
                for name, value in parse_qsl(sample.query, keep_blank_values=True)
            ]
        if features.consumer and sample.consumer:
            doc["consumer"] = sample.consumer
        headers = {
            name: redactor.text(value)
            for name, value in sample.headers
            if name in self._prompt_headers
        }
        if headers:
            doc["headers"] = headers
        if features.body_bytes:
            self._describe_body(sample, doc)
        return doc

    def _describe_body(self, sample: RequestSample, doc: dict[str, Any]) -> None:
        limit = self.features.body_bytes
        if sample.body is not None and self._is_textual(sample.content_type):
            if not sample.body:
                return
            excerpt = sample.body[:limit]
            truncated = len(sample.body) > limit or (
                sample.content_length is not None and sample.content_length > limit
            )
            doc["body"] = self.redactor.excerpt(excerpt.decode("utf-8", "replace"), truncated)
            if truncated:
                doc["body_truncated"] = True
        elif sample.content_length or sample.content_type:
            size = (
                "unknown size"
                if sample.content_length is None
                else f"{sample.content_length} bytes"
            )
            doc["body"] = f"<{size} of {sample.content_type or 'unknown type'}, not shown>"

    def _is_textual(self, content_type: str) -> bool:
        return content_type.lower().startswith(self._textual) if content_type else False


def _key_part(feature: str) -> Callable[[RequestSample], str]:
    if feature == "method":
        return lambda s: s.method
    if feature == "path":
        return lambda s: s.path
    if feature == "query":
        return lambda s: s.query
    if feature == "consumer":
        return lambda s: s.consumer or ""
    if feature == "body":
        return lambda s: hashlib.blake2b(s.body or b"", digest_size=16).hexdigest()
    name = feature[7:].lower()
    return lambda s: "\x00".join(v for n, v in s.headers if n == name)
