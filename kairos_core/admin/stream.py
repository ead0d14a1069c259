"""Live metrics over WebSocket: a snapshot on connect, then an update every `interval` seconds."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from aiohttp import WSMsgType, web

from kairos_core.admin.auth import STREAM_PROTOCOL

MAX_INTERVAL = 60.0
MIN_INTERVAL = 0.1
_REQUESTS = "kairos_requests"
_DURATION = "kairos_request_duration_seconds"


def quantile(bounds: list[float], counts: list[float], q: float) -> float | None:
    """Estimate a quantile from histogram bucket counts (linear within the bucket)."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    seen = 0.0
    lower = 0.0
    for index, count in enumerate(counts):
        upper = bounds[index] if index < len(bounds) else bounds[-1] * 2 if bounds else 0.0
        if count and seen + count >= rank:
            return lower + (upper - lower) * ((rank - seen) / count)
        seen += count
        lower = upper
    return lower


def summarize(snapshot: dict[str, Any], routes: set[str] | None = None) -> dict[str, Any]:
    """Totals per route (requests, errors, latency buckets), backends and counter totals."""
    per_route: dict[str, dict[str, Any]] = {}
    for (route, _method, klass), value in snapshot.get(_REQUESTS, {}).get("values", {}).items():
        if routes is not None and route not in routes:
            continue
        entry = per_route.setdefault(route, {"requests": 0.0, "errors": 0.0, "client_errors": 0.0})
        entry["requests"] += value
        if klass == "5xx":
            entry["errors"] += value
        elif klass == "4xx":
            entry["client_errors"] += value
    durations = snapshot.get(_DURATION, {})
    bounds = list(durations.get("buckets", ()))
    for (route,), (counts, total) in durations.get("values", {}).items():
        if route in per_route:
            per_route[route]["latency_buckets"] = list(counts)
            per_route[route]["latency_sum"] = total
    backends = []
    up = snapshot.get("kairos_backend_up", {}).get("values", {})
    breaker = snapshot.get("kairos_circuit_breaker_state", {}).get("values", {})
    in_flight = snapshot.get("kairos_backend_in_flight", {}).get("values", {})
    for key in sorted(up):
        backends.append(
            {
                "upstream": key[0],
                "backend": key[1],
                "up": bool(up[key]),
                "circuit": {0: "closed", 1: "half_open", 2: "open"}.get(
                    int(breaker.get(key, 0)), "closed"
                ),
                "in_flight": in_flight.get(key, 0),
            }
        )
    counters = {
        name: sum(data["values"].values())
        for name, data in snapshot.items()
        if data["kind"] == "counter"
    }
    gauge = snapshot.get
    return {
        "routes": per_route,
        "latency_bounds": bounds,
        "backends": backends,
        "counters": counters,
        "in_flight": sum(gauge("kairos_requests_in_flight", {}).get("values", {}).values()),
        "open_connections": sum(gauge("kairos_open_connections", {}).get("values", {}).values()),
    }


def rates(
    current: dict[str, Any], previous: dict[str, Any] | None, seconds: float
) -> dict[str, Any]:
    """Per-second rates and latency percentiles over the interval between two summaries."""
    out: dict[str, Any] = {}
    bounds = current["latency_bounds"]
    all_requests = all_errors = 0.0
    all_buckets: list[float] = [0.0] * (len(bounds) + 1)
    for route, now in current["routes"].items():
        before = (previous or {}).get("routes", {}).get(route, {})
        requests = now["requests"] - before.get("requests", 0.0) if previous else now["requests"]
        errors = now["errors"] - before.get("errors", 0.0) if previous else now["errors"]
        buckets = now.get("latency_buckets", [0.0] * (len(bounds) + 1))
        if previous and "latency_buckets" in before:
            buckets = [a - b for a, b in zip(buckets, before["latency_buckets"], strict=True)]
        all_requests += requests
        all_errors += errors
        all_buckets = [a + b for a, b in zip(all_buckets, buckets, strict=True)]
        out[route] = _stats(requests, errors, buckets, bounds, seconds)
    return {"total": _stats(all_requests, all_errors, all_buckets, bounds, seconds), "routes": out}


def _stats(
    requests: float, errors: float, buckets: list[float], bounds: list[float], seconds: float
) -> dict[str, Any]:
    return {
        "requests": requests,
        "rps": requests / seconds if seconds > 0 else 0.0,
        "error_rate": errors / requests if requests else 0.0,
        "p50": quantile(bounds, buckets, 0.50),
        "p95": quantile(bounds, buckets, 0.95),
        "p99": quantile(bounds, buckets, 0.99),
    }


async def stream(request: web.Request) -> web.StreamResponse:
    """GET /stream?interval=SECONDS&routes=a,b: live metrics over a WebSocket."""
    from kairos_core.admin.app import CONTROL_KEY, json_error

    try:
        interval = float(request.query.get("interval", "1"))
    except ValueError:
        return json_error(400, "invalid_interval", "interval must be a number of seconds")
    if not MIN_INTERVAL <= interval <= MAX_INTERVAL:
        return json_error(
            400,
            "invalid_interval",
            f"interval must be between {MIN_INTERVAL} and {MAX_INTERVAL} seconds",
        )
    routes_param = request.query.get("routes")
    routes = {r for r in routes_param.split(",") if r} if routes_param else None
    control = request.app[CONTROL_KEY]
    socket = web.WebSocketResponse(heartbeat=30, protocols=(STREAM_PROTOCOL,))
    if not socket.can_prepare(request).ok:
        return json_error(400, "websocket_required", "open /stream as a WebSocket")
    await socket.prepare(request)
    previous: dict[str, Any] | None = None
    previous_at = time.monotonic()
    kind = "snapshot"
    reader = asyncio.create_task(_drain(socket))
    try:
        while not socket.closed:
            current = summarize(await control.metrics(), routes)
            now = time.monotonic()
            message = {
                "type": kind,
                "time": time.time(),
                "interval": interval,
                "health": control.health(),
                **current,
                "rates": rates(current, previous, now - previous_at),
            }
            await socket.send_json(message)
            previous, previous_at, kind = current, now, "update"
            done, _ = await asyncio.wait({reader}, timeout=interval)
            if done:
                break
    except (ConnectionError, RuntimeError):
        pass
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await socket.close()
    return socket


async def _drain(socket: web.WebSocketResponse) -> None:
    """Read (and ignore) client messages until it closes."""
    async for message in socket:
        if message.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            break
