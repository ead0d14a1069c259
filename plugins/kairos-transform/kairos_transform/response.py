"""The response side: status mapping, then the JSON body, then headers."""

from __future__ import annotations

import json
from collections.abc import Mapping

import aiohttp
from multidict import CIMultiDict

from kairos_core import RequestContext, Response, error_response
from kairos_transform.bodies import BodyEdits, edit_json, is_json, read_bounded
from kairos_transform.compression import BodyError, parse_codings
from kairos_transform.conditions import Predicate, compile_condition, status_set
from kairos_transform.config import ResponseRules, StatusMapping
from kairos_transform.headers import compile_header_actions

_NO_BODY = frozenset({204, 304})
_UNEDITABLE = frozenset({204, 206, 304})
_UPSTREAM_BODY_ERRORS = (ConnectionError, TimeoutError, aiohttp.ClientError)
# Headers that describe the exact bytes of the old body.
_BODY_BOUND = ("Content-MD5", "Digest", "Content-Digest", "Repr-Digest")
_REPLACED_BODY = ("Content-Encoding", "Content-Range", "ETag", "Last-Modified", *_BODY_BOUND)


class CompiledMapping:
    """One status mapping with its new body rendered to bytes at build time."""

    __slots__ = ("applies", "body", "content_type", "statuses", "to")

    def __init__(self, mapping: StatusMapping) -> None:
        self.statuses = status_set([mapping.from_])
        self.applies: Predicate | None = compile_condition(mapping.when)
        self.to = mapping.to
        self.body: bytes | None = None
        self.content_type: str | None = None
        if mapping.replaces_body and mapping.to not in _NO_BODY:
            if isinstance(mapping.body, str):
                self.body = mapping.body.encode()
                self.content_type = mapping.content_type or "text/plain; charset=utf-8"
            else:
                self.body = json.dumps(mapping.body, separators=(",", ":")).encode()
                self.content_type = mapping.content_type or "application/json"
        elif mapping.to in _NO_BODY:
            self.body = b""

    def matches(self, ctx: RequestContext, headers: Mapping[str, str], status: int) -> bool:
        """True when this mapping takes a response with the backend's `status`."""
        return status in self.statuses and (
            self.applies is None or self.applies(ctx, headers, status)
        )


async def _discard(response: Response) -> None:
    """Drop a body that is being replaced (closing the stream releases the upstream socket)."""
    body = response.body
    if not isinstance(body, bytes):
        aclose = getattr(body, "aclose", None)
        if aclose is not None:
            await aclose()


class ResponseTransform:
    """Applies one configuration's response rules to what the inner chain returned."""

    def __init__(self, rules: ResponseRules) -> None:
        self.mappings = tuple(CompiledMapping(m) for m in rules.status)
        self.header_edits = compile_header_actions(rules.headers)
        self.body = BodyEdits(rules.body)
        self.limit = int(rules.body_limit)
        self.pass_invalid = rules.on_invalid == "pass"
        self.pass_oversize = rules.on_oversize == "pass"
        self.recompress = rules.recompress

    def __bool__(self) -> bool:
        return bool(self.mappings or self.header_edits or self.body)

    @property
    def headers_only(self) -> bool:
        """True when only header actions are configured (`edit_headers` does all the work)."""
        return not (self.mappings or self.body)

    def edit_headers(self, ctx: RequestContext, response: Response) -> Response:
        """Apply the header actions (synchronous)."""
        status = response.status
        headers = response.headers
        for edit in self.header_edits:
            edit(ctx, headers, status)
        return response

    async def apply(self, ctx: RequestContext, response: Response) -> Response:
        """Edit `response` (or replace it with a 502 when its body cannot be edited)."""
        status = response.status
        headers = response.headers
        for mapping in self.mappings:
            if mapping.matches(ctx, headers, status):
                await self._map(response, mapping)
                break
        if self.body:
            response = await self._edit_body(ctx, response, status)
        headers = response.headers
        for edit in self.header_edits:
            edit(ctx, headers, status)
        return response

    @staticmethod
    async def _map(response: Response, mapping: CompiledMapping) -> None:
        response.status = mapping.to
        response.reason = None
        if mapping.body is None:
            return
        await _discard(response)
        headers = response.headers
        headers.popall("Content-Length", None)
        for name in _REPLACED_BODY:
            headers.popall(name, None)
        response.body = mapping.body
        if mapping.content_type is not None:
            headers["Content-Type"] = mapping.content_type
        else:
            headers.popall("Content-Type", None)

    async def _edit_body(self, ctx: RequestContext, response: Response, status: int) -> Response:
        headers = response.headers
        if (
            ctx.method == "HEAD"
            or response.status in _UNEDITABLE
            or response.status < 200
            or not is_json(headers.get("Content-Type"))
        ):
            return response
        edits = self.body.select(ctx, headers, status)
        if not edits:
            return response
        limit = self.limit
        try:
            codings = parse_codings(headers.get("Content-Encoding"))
            length = headers.get("Content-Length", "")
            body = response.body
            too_big = (
                len(body) if isinstance(body, bytes) else int(length) if length.isdigit() else 0
            )
            if too_big > limit:
                raise BodyError("oversize", f"larger than {limit} bytes (the transform limit)")
            try:
                raw, rest = await read_bounded(body, limit)
            except _UPSTREAM_BODY_ERRORS as exc:
                await response.close()
                message = f"the backend's response body failed: {exc or type(exc).__name__}"
                return error_response(502, "upstream_body_failed", message, ctx.request_id)
            if rest is not None:
                response.body = rest
                raise BodyError("oversize", f"larger than {limit} bytes (the transform limit)")
            response.body = raw
            edited = edit_json(ctx, raw, codings, limit, edits, self.recompress)
        except BodyError as exc:
            if self.pass_oversize if exc.kind == "oversize" else self.pass_invalid:
                return response
            await response.close()
            kind = "upstream_body_too_large" if exc.kind == "oversize" else "invalid_upstream_body"
            return error_response(
                502, kind, f"upstream response body: {exc.message}", ctx.request_id
            )
        response.body = edited
        _after_edit(headers, self.recompress)
        return response


def _after_edit(headers: CIMultiDict[str], recompressed: bool) -> None:
    """Keep the metadata true to the new bytes."""
    headers.popall("Content-Length", None)
    if not recompressed:
        headers.popall("Content-Encoding", None)
    for name in _BODY_BOUND:
        headers.popall(name, None)
    etag = headers.get("ETag")
    if etag and not etag.startswith("W/"):
        headers["ETag"] = f"W/{etag}"
