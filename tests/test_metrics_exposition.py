"""/metrics: per-route counts, histograms, backend state, and a clean exposition (promtool)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

from kairos_core.testing import require_service


async def scrape(http, gw) -> str:
    async with http.get(gw.admin_url + "/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return await response.text()


def value(text: str, prefix: str) -> float:
    line = next(line for line in text.splitlines() if line.startswith(prefix))
    return float(line.rsplit(" ", 1)[1])


async def test_route_metrics_and_backend_state(kairos_gateway, echo_backend, http) -> None:
    gw = await kairos_gateway(
        {
            "upstreams": {"svc": {"backends": [{"url": echo_backend.url, "name": "e1"}]}},
            "routes": [
                {
                    "name": "items",
                    "path": "/items/{id}",
                    "upstream": "svc",
                    "plugins": [{"name": "headers"}],
                },
                {
                    "name": "dead",
                    "path": "/dead",
                    "upstream": {"backends": [{"url": "http://127.0.0.1:1"}]},
                },
            ],
            "observability": {"metrics": {"stage_sampling": 1}},
        }
    )
    for item in range(5):
        async with http.get(f"{gw.url}/items/{item}") as response:
            assert response.status == 200
    async with http.post(gw.url + "/items/9", data=b"x" * 100) as response:
        assert response.status == 200
    async with http.get(gw.url + "/dead") as response:
        assert response.status == 502
    async with http.get(gw.url + "/missing") as response:
        assert response.status == 404
    text = await scrape(http, gw)
    assert value(text, 'kairos_requests_total{method="GET",route="items",status_class="2xx"}') == 5
    assert value(text, 'kairos_requests_total{method="POST",route="items",status_class="2xx"}') == 1
    assert value(text, 'kairos_requests_total{method="GET",route="dead",status_class="5xx"}') == 1
    assert value(text, 'kairos_requests_total{method="GET",route="(none)",status_class="4xx"}') == 1
    assert value(text, 'kairos_request_duration_seconds_count{route="items"}') == 6
    assert value(text, 'kairos_upstream_duration_seconds_count{route="items"}') == 6
    assert value(text, 'kairos_request_bytes_total{route="items"}') == 100
    assert value(text, 'kairos_upstream_errors_total{kind="connect",route="dead"}') == 1
    assert value(text, 'kairos_backend_up{backend="e1",upstream="svc"}') == 1
    assert value(text, 'kairos_circuit_breaker_state{backend="e1",upstream="svc"}') == 0
    assert value(text, 'kairos_plugin_duration_seconds_count{plugin="headers",route="items"}') == 6
    assert value(text, "kairos_requests_in_flight") == 0
    assert 'kairos_build_info{python="' in text
    assert "/items/" not in text  # labels carry route names, never raw paths


async def test_exposition_passes_promtool(kairos_gateway, echo_backend, http) -> None:
    promtool = shutil.which("promtool")
    require_service("promtool", promtool is not None, "apt-get install prometheus")
    assert promtool is not None
    gw = await kairos_gateway(
        {
            "routes": [
                {"prefix": "/", "upstream": {"backends": [{"url": echo_backend.url}]}, "retry": {}}
            ]
        }
    )
    for _ in range(3):
        async with http.get(gw.url + "/") as response:
            await response.read()
    text = await scrape(http, gw)
    result = await asyncio.to_thread(
        subprocess.run,
        [promtool, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    series = [line.split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")]
    assert len(series) == len(set(series)), "duplicate series"


async def test_metrics_can_be_switched_off(kairos_gateway, echo_backend, http) -> None:
    gw = await kairos_gateway(
        {
            "observability": {"metrics": {"enabled": False}},
            "routes": [{"prefix": "/", "upstream": {"backends": [{"url": echo_backend.url}]}}],
        }
    )
    async with http.get(gw.url + "/") as response:
        assert response.status == 200
    assert "kairos_requests_total{" not in await scrape(http, gw)
