"""`kairos routes test`: dry-run a request against a config's route table."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import click
from multidict import CIMultiDict

from kairos_cli.common import build_or_exit, load_or_exit
from kairos_cli.routes_list_cmd import list_routes
from kairos_core.router import RouteMatch, decode_params, normalize_path
from kairos_core.upstream.pool import NoBackendAvailable


@click.group()
def routes() -> None:
    """Inspect routes."""


routes.add_command(list_routes)


@routes.command("test")
@click.argument("path", type=click.Path(dir_okay=False))
@click.argument("method")
@click.argument("url")
@click.option("-H", "--header", "headers", multiple=True, help="Request header 'Name: value'.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def test_route(path: str, method: str, url: str, headers: tuple[str, ...], as_json: bool) -> None:
    """Show which route of the config at PATH would serve METHOD URL, and what it would do."""
    loaded = load_or_exit(path)
    _gateway, runtime = build_or_exit(loaded)
    parts = urlsplit(
        url if "://" in url else f"http://localhost{url if url.startswith('/') else '/' + url}"
    )
    request_headers: CIMultiDict[str] = CIMultiDict()
    for header in headers:
        name, sep, value = header.partition(":")
        if not sep:
            raise click.BadParameter(f"expected 'Name: value', got {header!r}", param_hint="-H")
        request_headers.add(name.strip(), value.strip())
    if "Host" not in request_headers and parts.netloc:
        request_headers["Host"] = parts.netloc
    host = (request_headers.get("Host") or "").split(":")[0].lower()
    normalized = normalize_path(parts.path or "/")
    if normalized is None:
        raise click.ClickException(f"invalid path {parts.path!r}")
    found = runtime.router.match(method.upper(), host, normalized, request_headers)
    if not isinstance(found, RouteMatch):
        result: dict[str, Any] = {
            "matched": False,
            "status": 405 if found else 404,
            "allow": sorted(found),
        }
        _emit(result, as_json)
        raise SystemExit(1)
    route = found.target
    upstream_path = route.upstream_path(normalized, found.params, found.matched_prefix)
    target = f"{upstream_path}?{parts.query}" if parts.query else upstream_path
    try:
        backend = route.pool.choose(None)
        upstream_url = backend.url + target
    except NoBackendAvailable as exc:
        upstream_url = f"(none: {exc})"
    result = {
        "matched": True,
        "route": route.name,
        "params": decode_params(found.params),
        "upstream_pool": route.pool.name,
        "upstream_url": upstream_url,
        "chain": route.chain,
    }
    _emit(result, as_json)


def _emit(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    if not result["matched"]:
        status = result["status"]
        allow = result.get("allow")
        click.echo(
            f"no route: {status}" + (f" (allowed methods: {', '.join(allow)})" if allow else "")
        )
        return
    click.echo(f"route:     {result['route']}")
    params = result["params"]
    if params:
        click.echo("params:    " + ", ".join(f"{k}={v}" for k, v in params.items()))
    click.echo(f"upstream:  {result['upstream_pool']} -> {result['upstream_url']}")
    click.echo("chain:")
    for link in result["chain"]:
        click.echo(
            f"  {link['phase']:<10} {link['name']:<20} priority={link['priority']} ({link['scope']})"
        )
