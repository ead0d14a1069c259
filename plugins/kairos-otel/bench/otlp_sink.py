"""A minimal OTLP/HTTP collector for benchmarks: accepts POST /v1/traces, counts, discards.

    python plugins/kairos-otel/bench/otlp_sink.py [--port 4318]

Decodes nothing (a real collector's cost is not the gateway's); prints the number of export
requests and bytes received when stopped with Ctrl+C.
"""

from __future__ import annotations

import argparse

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

RESPONSE = ExportTraceServiceResponse().SerializeToString()
COUNTS = web.AppKey("counts", dict)


async def traces(request: web.Request) -> web.Response:
    """Count one export request and answer success."""
    counts = request.app[COUNTS]
    counts["requests"] += 1
    counts["bytes"] += len(await request.read())
    return web.Response(body=RESPONSE, content_type="application/x-protobuf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=4318)
    port = parser.parse_args().port
    app = web.Application(client_max_size=64 * 1024**2)
    app[COUNTS] = {"requests": 0, "bytes": 0}
    app.router.add_post("/v1/traces", traces)

    async def report(app: web.Application) -> None:
        print(f"received {app[COUNTS]['requests']} export requests, {app[COUNTS]['bytes']} bytes")

    app.on_cleanup.append(report)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None)


if __name__ == "__main__":
    main()
