"""A fake OpenAI-compatible model for proxy-level benchmarks: names `b2` after a fixed delay.

python plugins/kairos-ai/bench/fake_model.py --port 27099 --delay 0.05
"""

from __future__ import annotations

import argparse
import asyncio

from aiohttp import web

ANSWER = {
    "id": "bench",
    "object": "chat.completion",
    "created": 0,
    "model": "bench",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": '{"backend": "b2"}'},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 80, "completion_tokens": 6, "total_tokens": 86},
}


def model_app(delay: float, calls: list[int] | None = None) -> web.Application:
    """POST /v1/chat/completions answering `{"backend": "b2"}` after `delay` seconds."""

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        if calls is not None:
            calls.append(1)
        if delay:
            await asyncio.sleep(delay)
        return web.json_response(ANSWER)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=27099)
    parser.add_argument("--delay", type=float, default=0.05, help="seconds before answering")
    args = parser.parse_args()
    web.run_app(model_app(args.delay), host=args.host, port=args.port, access_log=None)
