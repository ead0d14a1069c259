"""Cache keys: `route|target|host|headers|consumer`, built from the route's key settings."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from multidict import MultiMapping

from kairos_core import RequestContext

SEPARATOR = "|"
VARIANT = "\x1e"


def _clean(value: str) -> str:
    return value.replace(SEPARATOR, "%7C") if SEPARATOR in value else value


def key_builder(
    query: str | list[str], headers: list[str], include_host: bool
) -> Callable[[RequestContext, str], str]:
    """A function `(ctx, consumer) -> primary key`, specialised once for the route's settings."""
    names = tuple(headers)
    kept = frozenset(query) if isinstance(query, list) else None

    def target(ctx: RequestContext) -> str:
        path = ctx.path
        if query == "none" or not ctx.query_string:
            return path
        if kept is None:
            return f"{path}?{ctx.query_string}"
        pairs = sorted(
            p for p in parse_qsl(ctx.query_string, keep_blank_values=True) if p[0] in kept
        )
        return f"{path}?{urlencode(pairs)}" if pairs else path

    def build(ctx: RequestContext, consumer: str) -> str:
        parts = [
            ctx.route.name,
            _clean(target(ctx)),
            _clean(ctx.host.lower()) if include_host else "",
        ]
        request_headers = ctx.headers
        parts.append(",".join(_clean(", ".join(request_headers.getall(n, ()))) for n in names))
        parts.append(consumer)
        return SEPARATOR.join(parts)

    def build_default(ctx: RequestContext, consumer: str) -> str:
        """The same key as `build` for `query: all` and no key headers, in one step."""
        raw = ctx.request.raw_path
        if raw[-1] == "?":
            raw = raw[:-1]
        host = ctx.host.lower() if include_host else ""
        if SEPARATOR in raw or SEPARATOR in host:
            raw, host = _clean(raw), _clean(host)
        return f"{ctx.route.name}|{raw}|{host}||{consumer}"

    if query == "all" and not names:
        return build_default
    return build


def variant_key(primary: str, names: tuple[str, ...], headers: MultiMapping[str]) -> str:
    """The key of the variant of `primary` that these request headers select (RFC 9111 4.1)."""
    values = "\n".join(f"{n}:{', '.join(headers.getall(n, ()))}" for n in names)
    digest = hashlib.blake2b(values.encode(), digest_size=12).hexdigest()
    return f"{primary}{VARIANT}{digest}"


@dataclass(frozen=True, slots=True)
class PurgeFilter:
    """Which stored keys a purge removes: one key, a route, a target prefix, or everything."""

    key: str | None = None
    route: str | None = None
    prefix: str | None = None

    def matches(self, stored: str) -> bool:
        """True when the stored key (primary or variant) is selected."""
        primary = stored.partition(VARIANT)[0]
        if self.key is not None and primary != self.key:
            return False
        route, _, rest = primary.partition(SEPARATOR)
        if self.route is not None and route != self.route:
            return False
        return self.prefix is None or rest.partition(SEPARATOR)[0].startswith(self.prefix)

    def key_prefix(self) -> str:
        """The longest literal prefix every selected key starts with."""
        if self.key is not None:
            return self.key
        if self.route is None:
            return ""
        return f"{self.route}{SEPARATOR}{self.prefix or ''}"
