"""The request side: headers, then path, then query, then the JSON body."""

from __future__ import annotations

from urllib.parse import quote

import aiohttp
from aiohttp import http_exceptions

from kairos_core import RequestContext, Response, error_response
from kairos_transform.bodies import BodyEdits, edit_json, is_json
from kairos_transform.compression import BodyError, parse_codings
from kairos_transform.conditions import Predicate, compile_condition
from kairos_transform.config import RequestRules
from kairos_transform.headers import compile_header_actions
from kairos_transform.query import compile_query_actions
from kairos_transform.templates import Replacement

_CLIENT_BODY_ERRORS = (ConnectionError, aiohttp.ClientError, http_exceptions.HttpProcessingError)
_STATUS = {"invalid": 400, "oversize": 413, "encoding": 415}
_TYPE = {
    "invalid": "invalid_json",
    "oversize": "body_too_large",
    "encoding": "unsupported_encoding",
}


def _path_encode(value: str) -> str:
    return quote(value, safe="")


class RequestTransform:
    """One configuration's request rules: `edit_target` (sync), then `edit_body` (async)."""

    def __init__(self, rules: RequestRules) -> None:
        self.header_edits = compile_header_actions(rules.headers)
        self.rewrites: tuple[tuple[Replacement, Predicate | None], ...] = tuple(
            (Replacement(r.pattern, r.replacement, 0 if r.all else 1), compile_condition(r.when))
            for r in rules.path
        )
        self.edit_query = compile_query_actions(rules.query)
        self.body = BodyEdits(rules.body)
        self.limit = int(rules.body_limit)
        self.pass_invalid = rules.on_invalid == "pass"
        self.pass_oversize = rules.on_oversize == "pass"

    def __bool__(self) -> bool:
        return self.edits_target or bool(self.body)

    @property
    def edits_target(self) -> bool:
        """True when headers, path or query have actions (no body work needed for those)."""
        return bool(self.header_edits or self.rewrites or self.edit_query)

    def edit_target(self, ctx: RequestContext) -> None:
        """Headers, then path, then query: synchronous, no body involved."""
        headers = ctx.headers
        for edit in self.header_edits:
            edit(ctx, headers, 0)
        for replacement, applies in self.rewrites:
            if applies is None or applies(ctx, headers, 0):
                path = replacement.apply(ctx, ctx.upstream_path, _path_encode)
                if path is not None:
                    ctx.upstream_path = path if path.startswith("/") else "/" + path
        if self.edit_query is not None:
            self.edit_query(ctx)

    async def edit_body(self, ctx: RequestContext) -> Response | None:
        """Edit a JSON body when an action applies; a Response means the request is refused."""
        headers = ctx.headers
        if not ctx.has_body() or not is_json(headers.get("Content-Type")):
            return None
        edits = self.body.select(ctx, headers, 0)
        if not edits:
            return None
        limit = self.limit
        try:
            codings = parse_codings(headers.get("Content-Encoding"))
            length = ctx.request.content_length
            if length is not None and length > limit:
                raise BodyError("oversize", f"larger than {limit} bytes (the transform limit)")
            if len(await ctx.peek_body(limit + 1)) > limit:
                raise BodyError("oversize", f"larger than {limit} bytes (the transform limit)")
            raw = await ctx.read_body()
            ctx.set_body(edit_json(ctx, raw, codings, limit, edits, reencode=True))
        except BodyError as exc:
            if exc.kind == "oversize" and self.pass_oversize:
                return None
            if exc.kind != "oversize" and self.pass_invalid:
                return None
            return error_response(
                _STATUS[exc.kind], _TYPE[exc.kind], f"request body: {exc.message}", ctx.request_id
            )
        except TimeoutError:
            return error_response(
                408,
                "request_timeout",
                "the client stopped sending the request body",
                ctx.request_id,
            )
        except _CLIENT_BODY_ERRORS:
            return error_response(
                400, "incomplete_body", "the request body was cut short", ctx.request_id
            )
        return None
