"""Write one gateway config per balancer for the proxy-level benchmark, and print the
`proxy_anchors.sh --add` arguments that run each one (3 backends in front of its backend).

    python plugins/kairos-balancers/bench/proxy_configs.py /tmp/kairos-balancers-bench
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

BALANCERS: dict[str, Any] = {
    "round_robin": "round_robin",
    "weighted_round_robin": "weighted_round_robin",
    "least_connections": "least_connections",
    "random": "random",
    "power_of_two": "power_of_two",
    "consistent_hash": {"name": "consistent_hash", "config": {"key": "client_ip"}},
    "ewma": "ewma",
}


def config(balancer: Any, backend: str) -> dict[str, Any]:
    """Three backends (same address, distinct names and weights 2/1/1) behind one route."""
    return {
        "upstreams": {
            "app": {
                "balancer": balancer,
                "backends": [
                    {"url": backend, "name": "a", "weight": 2},
                    {"url": backend, "name": "b"},
                    {"url": backend, "name": "c"},
                ],
            }
        },
        "routes": [{"prefix": "/", "upstream": "app"}],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--backend", default="http://127.0.0.1:27080")
    parser.add_argument("--first-port", type=int, default=27100)
    args = parser.parse_args()
    args.directory.mkdir(parents=True, exist_ok=True)
    for offset, (name, balancer) in enumerate(BALANCERS.items()):
        path = args.directory / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config(balancer, args.backend), sort_keys=False))
        port = args.first_port + offset
        print(
            f"--add 'kairos-{name}|{port}|0|kairos serve --config {path} --port {port} --admin off'"
        )


if __name__ == "__main__":
    main()
