"""`kairos routes test`: dry-run a request against a config's route table."""

from __future__ import annotations

import asyncio
import inspect
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
from multidict import CIMultiDict

from kairos_cli.common import build_or_exit, load_or_exit
from kairos_cli.routes_list_cmd import list_routes
from kairos_core.router import RouteMatch, decode_params, normalize_path
from kairos_core.runtime import Runtime
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
@click.option(
    "--body",
    default=None,
    help="Sample request body for the balancer's description; @FILE reads a file.",
)
@click.option(
    "--live",
    "--ask-model",
    "live",
    is_flag=True,
    help="Let a balancer that describes its choice consult what it depends on (e.g. a model).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def test_route(
    path: str,
    method: str,
    url: str,
    headers: tuple[str, ...],
    body: str | None,
    live: bool,
    as_json: bool,
) -> None:
    """Show which route of the config at PATH would serve METHOD URL, and what it would do.

    When the route's balancer has a `describe(sample, live)` method, its result is shown too
    (for example what an AI balancer would send to its model); nothing external is called
    unless `--live` is given.
    """
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
    describe = getattr(route.pool.balancer, "describe", None)
    if describe is not None:
        sample = {
            "method": method.upper(),
            "path": parts.path or "/",
            "query": parts.query,
            "headers": list(request_headers.items()),
            "body": _sample_body(body),
        }
        result["balancer"] = _describe(describe, sample, live, runtime)
    _emit(result, as_json)


def _sample_body(body: str | None) -> bytes:
    if body is None:
        return b""
    if body.startswith("@"):
        try:
            return Path(body[1:]).read_bytes()
        except OSError as exc:
            raise click.BadParameter(str(exc), param_hint="--body") from None
    return body.encode()


def _describe(describe: Any, sample: dict[str, Any], live: bool, runtime: Runtime) -> Any:
    """Call the balancer's `describe`, awaiting it (then closing the runtime) when async."""
    described = describe(sample, live)
    if not inspect.isawaitable(described):
        return described

    async def settle() -> Any:
        try:
            return await described
        finally:
            await runtime.close()

    return asyncio.run(settle())


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
    if "balancer" in result:
        click.echo("balancer:")
        for line in json.dumps(result["balancer"], indent=2, default=str).splitlines():
            click.echo(f"  {line}")
