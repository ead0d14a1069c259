"""Opening the counters of one plugin entry: in-process, shared memory or Redis, and sharing them.

Counters are shared by identity (gateway instance, namespace, limit), so a reload that keeps
a limit keeps its counts, and entries that name the same `namespace` count together.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kairos_core import GatewayServices, redact_url
from kairos_ratelimit.config import LimitSpec, RateLimitConfig
from kairos_ratelimit.memory import Counter, local_counter
from kairos_ratelimit.shared_counters import SharedConcurrency, SharedLog, SharedWindowed
from kairos_ratelimit.shared_memory import segment_name, shm_dir, sweep_stale

if TYPE_CHECKING:  # redis is imported only by gateways that use it
    from kairos_ratelimit.redis_counter import RedisCounter
    from kairos_ratelimit.redis_link import RedisLink

SHARED_KEY = "rate-limit"
_open: dict[str, list[Any]] = {}
"""identity -> [counter, users]: memory counters of this process, kept across reloads."""
_swept = False


def limit_identity(namespace: str, spec: LimitSpec) -> str:
    """What makes two entries' limits the same counters."""
    numbers = (spec.algorithm, spec.quota, spec.window_us, spec.capacity, spec.cost)
    return f"{namespace}/{spec.display_name()}/{json.dumps(numbers)}"


def redis_namespace(identity: str, namespace: str, spec: LimitSpec) -> str:
    """A readable, bounded key namespace: `namespace:limit-name:digest`."""
    digest = hashlib.sha1(identity.encode(), usedforsecurity=False).hexdigest()[:8]
    return f"{namespace}:{spec.display_name()}:{digest}"


def open_memory(
    config: RateLimitConfig, spec: LimitSpec, namespace: str, services: GatewayServices
) -> Counter:
    """This process's counter for `spec`: shared memory with several workers, else a dict."""
    global _swept
    shared = config.share_across_workers and services.workers > 1
    identity = (
        f"{services.instance_id}|{limit_identity(namespace, spec)}|{config.max_keys}"
        f"|{'shm:' + str(services.workers) if shared else 'local'}"
    )
    entry = _open.get(identity)
    if entry is not None:
        entry[1] += 1
        return entry[0]  # type: ignore[no-any-return]
    counter: Counter
    if not shared:
        counter = local_counter(spec, config.max_keys)
    else:
        if not _swept:
            _swept = True
            sweep_stale()
        path = shm_dir() / segment_name(services.instance_id, identity)
        counter = _shared_counter(spec, path, config.max_keys, services)
    _open[identity] = [counter, 1]
    return counter


def _shared_counter(
    spec: LimitSpec, path: Path, max_keys: int, services: GatewayServices
) -> Counter:
    if spec.algorithm == "concurrency":
        return SharedConcurrency(spec, path, max_keys, services.worker_id, services.workers)
    if spec.algorithm == "sliding_window_log":
        return SharedLog(spec, path, max_keys)
    return SharedWindowed(spec, path, max_keys)


def close_memory(counter: Counter) -> None:
    """Drop one user of a memory counter; the last one closes it (detaching shared memory)."""
    identity = next((key for key, entry in _open.items() if entry[0] is counter), None)
    if identity is None:
        return
    entry = _open[identity]
    entry[1] -= 1
    if entry[1] <= 0:
        del _open[identity]
        closer = getattr(counter, "close", None)
        if closer is not None:
            closer()


def acquire_link(config: RateLimitConfig, services: GatewayServices) -> RedisLink:
    """The Redis link for these settings, shared by every entry of this configuration."""
    from kairos_ratelimit.redis_link import RedisLink

    links: dict[str, RedisLink] = services.shared.setdefault(SHARED_KEY, {})
    identity = _link_identity(config)
    link = links.get(identity)
    if link is None:
        link = links[identity] = RedisLink(config.redis, redact_url(config.redis.url))
        link.identity = identity
    link.users += 1
    link.start()
    return link


def _link_identity(config: RateLimitConfig) -> str:
    data = config.redis.model_dump()
    if config.redis.password is not None:
        data["password"] = config.redis.password.get_secret_value()
    return json.dumps(data, sort_keys=True)


async def release_link(link: RedisLink, services: GatewayServices) -> None:
    """Drop one user of a link; the last one closes the client."""
    link.users -= 1
    if link.users <= 0:
        links: dict[str, RedisLink] = services.shared.get(SHARED_KEY, {})
        links.pop(link.identity, None)
        await link.close()


def open_redis(link: RedisLink, spec: LimitSpec, namespace: str) -> RedisCounter:
    """The Redis counter for `spec` in `namespace`."""
    from kairos_ratelimit.redis_counter import RedisCounter

    identity = limit_identity(namespace, spec)
    return RedisCounter(spec, link, redis_namespace(identity, namespace, spec))
