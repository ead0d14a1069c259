"""Live metrics over WebSocket: a snapshot on connect, then an update every `interval` seconds."""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from kairos_core.admin.auth import STREAM_PROTOCOL

OPEN_STREAMS_KEY = web.AppKey("kairos_open_streams", weakref.WeakSet[web.WebSocketResponse])
MAX_INTERVAL = 60.0
MIN_INTERVAL = 0.1
_REQUESTS = "kairos_requests"
_DURATION = "kairos_request_duration_seconds"
_UPSTREAM_DURATION = "kairos_upstream_duration_seconds"
_BACKEND_DURATION = "kairos_backend_duration_seconds"


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
    """Totals per route (requests, errors, latency buckets), backends and counter totals.

    `counter_labels` breaks every counter down by each of its labels but `route` (per-route
    figures are under `routes`), one label at a time: rate-limit decisions by `decision`,
    cache lookups by `result`, requests by `status_class`.
    """
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
    upstream_durations = snapshot.get(_UPSTREAM_DURATION, {})
    for (route,), (counts, _total) in upstream_durations.get("values", {}).items():
        if route in per_route:
            per_route[route]["upstream_latency_buckets"] = list(counts)
    backends = []
    up = snapshot.get("kairos_backend_up", {}).get("values", {})
    breaker = snapshot.get("kairos_circuit_breaker_state", {}).get("values", {})
    in_flight = snapshot.get("kairos_backend_in_flight", {}).get("values", {})
    backend_durations = snapshot.get(_BACKEND_DURATION, {})
    latencies = backend_durations.get("values", {})
    for key in sorted(up):
        entry = {
            "upstream": key[0],
            "backend": key[1],
            "up": bool(up[key]),
            "circuit": {0: "closed", 1: "half_open", 2: "open"}.get(
                int(breaker.get(key, 0)), "closed"
            ),
            "in_flight": in_flight.get(key, 0),
        }
        if key in latencies:
            entry["latency_buckets"] = list(latencies[key][0])
        backends.append(entry)
    counters = {
        name: sum(data["values"].values())
        for name, data in snapshot.items()
        if data["kind"] == "counter"
    }
    gauge = snapshot.get
    return {
        "routes": per_route,
        "latency_bounds": bounds,
        "upstream_latency_bounds": list(upstream_durations.get("buckets", ())),
        "backend_latency_bounds": list(backend_durations.get("buckets", ())),
        "backends": backends,
        "counters": counters,
        "counter_labels": _by_label(snapshot),
        "in_flight": sum(gauge("kairos_requests_in_flight", {}).get("values", {}).values()),
        "open_connections": sum(gauge("kairos_open_connections", {}).get("values", {}).values()),
    }


def _by_label(snapshot: dict[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """Counter totals by each label value but `route`: {family: {label: {value: total}}}."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, data in snapshot.items():
        if data["kind"] != "counter":
            continue
        positions = [(i, label) for i, label in enumerate(data["labels"]) if label != "route"]
        if not positions:
            continue
        per_label: dict[str, dict[str, float]] = {}
        values = data["values"]
        for index, label in positions:
            totals: dict[str, float] = {}
            for key, value in values.items():
                totals[key[index]] = totals.get(key[index], 0.0) + value
            per_label[label] = totals
        out[name] = per_label
    return out


def rates(
    current: dict[str, Any], previous: dict[str, Any] | None, seconds: float
) -> dict[str, Any]:
    """Per-second rates and latency percentiles over the interval between two summaries."""
    out: dict[str, Any] = {}
    bounds = current["latency_bounds"]
    upstream_bounds = current.get("upstream_latency_bounds", [])
    all_requests = all_errors = 0.0
    all_buckets: list[float] = [0.0] * (len(bounds) + 1)
    all_upstream: list[float] = [0.0] * (len(upstream_bounds) + 1)
    for route, now in current["routes"].items():
        before = (previous or {}).get("routes", {}).get(route, {})
        requests = now["requests"] - before.get("requests", 0.0) if previous else now["requests"]
        errors = now["errors"] - before.get("errors", 0.0) if previous else now["errors"]
        buckets = _delta(now, before, "latency_buckets", len(bounds) + 1)
        upstream = _delta(now, before, "upstream_latency_buckets", len(upstream_bounds) + 1)
        all_requests += requests
        all_errors += errors
        all_buckets = [a + b for a, b in zip(all_buckets, buckets, strict=True)]
        all_upstream = [a + b for a, b in zip(all_upstream, upstream, strict=True)]
        out[route] = _stats(requests, errors, buckets, bounds, seconds)
        out[route]["upstream"] = _percentiles(upstream_bounds, upstream)
    total = _stats(all_requests, all_errors, all_buckets, bounds, seconds)
    total["upstream"] = _percentiles(upstream_bounds, all_upstream)
    return {"total": total, "routes": out}


def _delta(now: dict[str, Any], before: dict[str, Any], key: str, size: int) -> list[float]:
    """Histogram counts added since `before` (all of them when there is no `before`)."""
    counts: list[float] = now.get(key, [0.0] * size)
    if key in before:
        return [a - b for a, b in zip(counts, before[key], strict=True)]
    return list(counts)


def _percentiles(bounds: list[float], buckets: list[float]) -> dict[str, float | None]:
    return {
        "p50": quantile(bounds, buckets, 0.50),
        "p95": quantile(bounds, buckets, 0.95),
        "p99": quantile(bounds, buckets, 0.99),
    }


def _stats(
    requests: float, errors: float, buckets: list[float], bounds: list[float], seconds: float
) -> dict[str, Any]:
    return {
        "requests": requests,
        "rps": requests / seconds if seconds > 0 else 0.0,
        "error_rate": errors / requests if requests else 0.0,
        **_percentiles(bounds, buckets),
    }


async def stream(request: web.Request) -> web.StreamResponse:
    """GET /stream?interval=SECONDS&routes=a,b: live metrics over a WebSocket."""
    from kairos_core.admin.app import CONTROL_KEY
    from kairos_core.admin.body import json_error

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
    request.app[OPEN_STREAMS_KEY].add(socket)
    previous: dict[str, Any] | None = None
    # The snapshot's rates cover everything counted since the gateway started.
    previous_at = time.monotonic() - float(control.health().get("uptime_seconds") or 0.0)
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


async def close_streams(app: web.Application) -> None:
    """On shutdown, say goodbye to open streams instead of waiting for their clients to leave."""
    open_streams = app[OPEN_STREAMS_KEY]
    for socket in list(open_streams):
        await socket.close(code=WSCloseCode.GOING_AWAY, message=b"admin listener shutting down")
