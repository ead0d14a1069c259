"""JSON body edits: compiled field actions, bounded buffering, decode and re-encode."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from kairos_core import RequestContext
from kairos_transform import compression
from kairos_transform.actions import BodyAdd, BodyRemove, BodyRename, BodySet
from kairos_transform.compression import BodyError
from kairos_transform.conditions import Predicate, compile_condition
from kairos_transform.jsonpath import parse_path, remove_field, rename_field, set_field
from kairos_transform.templates import Template

BodyActionModel = BodyAdd | BodySet | BodyRemove | BodyRename
FieldEdit = Callable[[RequestContext, Any], None]
_MISSING = object()


def is_json(content_type: str | None) -> bool:
    """`application/json` or any `+json` media type."""
    if not content_type:
        return False
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _value_renderer(value: Any) -> Callable[[RequestContext], Any]:
    """Render template strings inside a JSON value; `_MISSING` when a variable has no value."""
    if isinstance(value, str):
        template = Template(value)
        if template.constant is not None:
            constant = template.constant
            return lambda ctx: constant
        return lambda ctx: _or_missing(template.render(ctx))
    if isinstance(value, dict):
        items = [(k, _value_renderer(v)) for k, v in value.items()]

        def render_object(ctx: RequestContext) -> Any:
            out = {}
            for key, render in items:
                rendered = render(ctx)
                if rendered is _MISSING:
                    return _MISSING
                out[key] = rendered
            return out

        return render_object
    if isinstance(value, list):
        renders = [_value_renderer(v) for v in value]

        def render_list(ctx: RequestContext) -> Any:
            out = [render(ctx) for render in renders]
            return _MISSING if any(v is _MISSING for v in out) else out

        return render_list
    return lambda ctx: value


def _or_missing(value: str | None) -> Any:
    return _MISSING if value is None else value


def _field_edit(action: BodyActionModel) -> FieldEdit:
    path = parse_path(action.path)
    if isinstance(action, BodyAdd | BodySet):
        render = _value_renderer(action.value)
        only_if_absent = isinstance(action, BodyAdd)

        def write(ctx: RequestContext, doc: Any) -> None:
            value = render(ctx)
            if value is not _MISSING:
                set_field(doc, path, value, only_if_absent)

        return write
    if isinstance(action, BodyRemove):

        def remove(ctx: RequestContext, doc: Any) -> None:
            remove_field(doc, path)

        return remove
    to = parse_path(action.to)
    return lambda ctx, doc: rename_field(doc, path, to)


class BodyEdits:
    """A direction's JSON field actions; `select` picks those whose conditions hold."""

    __slots__ = ("_always", "_steps")

    def __init__(self, actions: Sequence[BodyActionModel]) -> None:
        self._steps: tuple[tuple[FieldEdit, Predicate | None], ...] = tuple(
            (_field_edit(a), compile_condition(a.when)) for a in actions
        )
        self._always = tuple(edit for edit, applies in self._steps if applies is None)
        if len(self._always) != len(self._steps):
            self._always = ()

    def __bool__(self) -> bool:
        return bool(self._steps)

    def select(
        self, ctx: RequestContext, headers: Mapping[str, str], status: int
    ) -> tuple[FieldEdit, ...]:
        """The edits that apply to this message (no buffering when none do)."""
        if self._always:
            return self._always
        return tuple(
            edit
            for edit, applies in self._steps
            if applies is None or applies(ctx, headers, status)
        )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_ASCII_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def parse_json(data: bytes) -> Any:
    """Parse JSON bytes (UTF-8, -16 or -32, as `json.loads` detects); NaN/Infinity refused."""
    try:
        return _DECODER.decode(data.decode(json.detect_encoding(data), "surrogatepass"))
    except (ValueError, RecursionError) as exc:
        raise BodyError("invalid", f"not valid JSON: {exc}") from None


def dump_json(doc: Any) -> bytes:
    """Compact JSON, UTF-8."""
    try:
        return _ENCODER.encode(doc).encode()
    except UnicodeEncodeError:  # lone surrogates from \ud800 escapes
        return _ASCII_ENCODER.encode(doc).encode()
    except ValueError as exc:  # 1e999 parses as infinity, which JSON cannot hold
        raise BodyError("invalid", f"holds a number JSON cannot represent: {exc}") from None


def edit_json(
    ctx: RequestContext,
    raw: bytes,
    codings: tuple[str, ...],
    limit: int,
    edits: Sequence[FieldEdit],
    reencode: bool,
) -> bytes:
    """Decode, parse, edit and serialise a body; BodyError says why it could not be edited."""
    doc = parse_json(compression.decode(raw, codings, limit))
    for edit in edits:
        edit(ctx, doc)
    out = dump_json(doc)
    return compression.encode(out, codings) if reencode else out


async def read_bounded(
    body: bytes | AsyncIterator[bytes], limit: int
) -> tuple[bytes, AsyncIterator[bytes] | None]:
    """Buffer at most `limit` bytes: (body, None) if it fit, else (b"", the whole stream again)."""
    if isinstance(body, bytes):
        return body, None
    chunks: list[bytes] = []
    size = 0
    iterator = body.__aiter__()
    async for chunk in iterator:
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"", _replay(chunks, iterator)
    return b"".join(chunks), None


async def _replay(chunks: list[bytes], rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        for chunk in chunks:
            yield chunk
        chunks.clear()
        async for chunk in rest:
            yield chunk
    finally:
        aclose = getattr(rest, "aclose", None)
        if aclose is not None:
            await aclose()
