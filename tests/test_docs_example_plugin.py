"""The documented example plugin (docs/examples/kairos-example-auth), installed as a user would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from kairos_core.plugins import installed_plugins
from kairos_core.testing import GatewayProcess

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "kairos-example-auth"
SECRET = "s3cret-for-the-billing-team"

CONFIG = """
consumers:
  - name: billing
routes:
  - prefix: /invoices
    upstream:
      backends:
        - url: {backend}
    plugins:
      - name: shared-secret
        config:
          secrets:
            - consumer: billing
              secret: ${{BILLING_SECRET}}
"""


def test_example_is_not_installed_in_the_test_environment():
    # Otherwise the tests below could pass without the wheel they build.
    assert "shared-secret" not in {p.name for p in installed_plugins()}


async def test_installs_lists_validates_and_serves(
    install_distribution, echo_backend, http, tmp_path
):
    site = install_distribution(EXAMPLE)

    listed = site.kairos("plugins", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    row = next(r for r in json.loads(listed.stdout) if r["name"] == "shared-secret")
    assert (row["distribution"], row["version"], row["target"]) == (
        "kairos-example-auth",
        "0.1.0",
        "kairos_example_auth",
    )
    hooks = site.kairos("plugins", "list", "--hooks")
    assert "register_authenticators" in hooks.stdout, hooks.stderr

    config = tmp_path / "gateway.yaml"
    config.write_text(CONFIG.format(backend=echo_backend.url))
    checked = site.kairos("validate", str(config), BILLING_SECRET=SECRET)
    assert checked.returncode == 0, checked.stderr
    assert "plugins: shared-secret" in checked.stdout

    gateway = GatewayProcess(
        ["--config", str(config), "--port", "0", "--admin", "off"],
        env=site.env(BILLING_SECRET=SECRET),
    )
    await gateway.start()
    try:
        async with http.get(gateway.url + "/invoices/7") as response:
            assert response.status == 401
            assert response.headers["WWW-Authenticate"].startswith("SharedSecret")
        headers = {"X-Shared-Secret": SECRET}
        async with http.get(gateway.url + "/invoices/7", headers=headers) as response:
            assert response.status == 200
            seen = (await response.json())["headers"]
        assert seen["X-Consumer"] == "billing"
        assert "X-Shared-Secret" not in seen
    finally:
        await gateway.stop()


def test_bad_secret_setting_fails_validation_with_the_field(install_distribution, tmp_path):
    site = install_distribution(EXAMPLE)
    config = tmp_path / "gateway.yaml"
    config.write_text(CONFIG.format(backend="http://127.0.0.1:9"))
    checked = site.kairos("validate", str(config), BILLING_SECRET="short")
    assert checked.returncode == 1
    assert "routes[0].plugins[0].config.secrets[0].secret" in checked.stderr
    assert "at least 16 characters" in checked.stderr


def test_its_own_tests_pass_against_the_installed_wheel(install_distribution, tmp_path):
    site = install_distribution(EXAMPLE)
    run_dir = tmp_path / "run"  # tests and pytest settings only: the import must hit the wheel
    shutil.copytree(EXAMPLE / "tests", run_dir / "tests")
    shutil.copy(EXAMPLE / "pyproject.toml", run_dir)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=run_dir,
        env={**os.environ, **site.env()},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "6 passed" in done.stdout
