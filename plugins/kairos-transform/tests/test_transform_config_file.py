"""Templates in a real config file: they coexist with the loader's `${ENV}` interpolation."""

from __future__ import annotations

from pathlib import Path

from kairos_core.testing import GatewayProcess

CONFIG = """
routes:
  - prefix: /
    upstream: {backends: [{url: "%s"}]}
    plugins:
      - name: transform
        config:
          request:
            headers:
              - {action: set, name: X-Env, value: "${KAIROS_TEST_GATEWAY_NAME}"}
              - {action: set, name: X-Client, value: "$(client_ip)"}
              - {action: set, name: X-Literal, value: "US$$5 $$$$(not_a_template)"}
            path: {pattern: "^/users/(?P<id>[0-9]+)$", replacement: "/v2/$id/$(method)"}
"""


async def test_templates_survive_env_interpolation(tmp_path: Path, echo_backend, http) -> None:
    path = tmp_path / "kairos.yaml"
    path.write_text(CONFIG % echo_backend.url)
    gateway = GatewayProcess(
        ["-c", str(path), "--host", "127.0.0.1", "--port", "0", "--admin", "off"],
        env={"KAIROS_TEST_GATEWAY_NAME": "edge-1"},
    )
    await gateway.start()
    try:
        async with http.get(gateway.url + "/users/42") as response:
            assert response.status == 200
    finally:
        assert await gateway.stop() == 0
    record = echo_backend.records[-1]
    assert record.path == "/v2/42/GET"
    assert record.headers["X-Env"] == "edge-1"
    assert record.headers["X-Client"] == "127.0.0.1"
    assert record.headers["X-Literal"] == "US$5 $(not_a_template)"
