"""Admin API error bodies and JSON request bodies read into a pydantic model."""

from __future__ import annotations

from typing import TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def json_error(status: int, error_type: str, message: str) -> web.Response:
    """The admin API's error body."""
    return web.json_response(
        {"status": status, "type": error_type, "message": message}, status=status
    )


def _bad_request(error_type: str, message: str) -> web.HTTPBadRequest:
    body = orjson.dumps({"status": 400, "type": error_type, "message": message}).decode()
    return web.HTTPBadRequest(text=body, content_type="application/json")


async def read_json_body(request: web.Request, model: type[M]) -> M:
    """The request's JSON object validated by `model`; raises a 400 naming what is wrong."""
    try:
        data = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise _bad_request("invalid_json", "the request body must be a JSON object") from None
    if not isinstance(data, dict):
        raise _bad_request("invalid_json", "the request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        raise _bad_request("invalid_body", problems) from None
