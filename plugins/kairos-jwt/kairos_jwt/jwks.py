"""A JWKS URL kept fresh: fetched at start, refreshed in the background, refetched on unknown kid."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from typing import Any

import aiohttp

from kairos_jwt.config import JwksConfig
from kairos_jwt.keyring import EMPTY, KeySet
from kairos_jwt.keys import PinnedKey, pin_jwk

log = logging.getLogger("kairos.jwt.jwks")

MAX_JWKS_BYTES = 1024 * 1024
_RETRY_FIRST = 1.0


class JwksError(Exception):
    """A JWKS document could not be fetched or holds no usable key."""


def parse_jwks(document: Any, allowed: frozenset[str], origin: str) -> list[PinnedKey]:
    """Pin every usable signing key of a JWKS document; skip (and log) the others."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksError(f"{origin}: not a JWK Set (no `keys` list)")
    keys: list[PinnedKey] = []
    for index, jwk in enumerate(document["keys"]):
        where = f"{origin} keys[{index}]"
        if not isinstance(jwk, dict):
            log.warning("%s: not a JSON object; skipped", where)
            continue
        if jwk.get("use", "sig") != "sig":
            continue
        ops = jwk.get("key_ops")
        if isinstance(ops, list) and "verify" not in ops:
            continue
        try:
            keys.append(pin_jwk(jwk, allowed, where))
        except ValueError as exc:
            log.warning("%s skipped: %s", where, exc)
    if not keys:
        raise JwksError(f"{origin}: no usable signing key")
    return keys


class JwksSource:
    """One JWKS URL; shared by every authenticator of a configuration that names it."""

    def __init__(self, config: JwksConfig, allowed: frozenset[str]) -> None:
        self.config = config
        self.allowed = allowed
        self._keys: KeySet = EMPTY
        self._version = 0
        self._loaded = False
        self._users = 0
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._inflight: asyncio.Task[bool] | None = None
        self._last_attempt: float | None = None
        self.fetches = 0
        """Fetch attempts so far (for tests and the admin view)."""

    @property
    def current(self) -> KeySet:
        """The keys as last fetched."""
        return self._keys

    @property
    def version(self) -> int:
        """Bumped whenever the key set changes."""
        return self._version

    @property
    def loaded(self) -> bool:
        """True once a fetch succeeded."""
        return self._loaded

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    async def start(self) -> None:
        """First user: open a session, fetch once, then refresh in the background."""
        self._users += 1
        if self._users > 1:
            return
        ssl_context: ssl.SSLContext | bool = True
        if self.config.ca_bundle:
            ssl_context = ssl.create_default_context(cafile=self.config.ca_bundle)
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.config.timeout),
            connector=aiohttp.TCPConnector(ssl=ssl_context, limit=2),
            raise_for_status=False,
        )
        await self._fetch_logged()
        self._task = asyncio.get_running_loop().create_task(self._refresh_loop())

    async def close(self) -> None:
        """Last user: stop the refresh task and close the session."""
        if self._users == 0:
            return
        self._users -= 1
        if self._users > 0:
            return
        for task in (self._task, self._inflight):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._inflight = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def refetch_for_unknown_kid(self) -> bool:
        """Refetch now unless one is running (join it) or one ran too recently; True if changed."""
        inflight = self._inflight
        if inflight is None:
            last = self._last_attempt
            if last is not None and self._now() - last < self.config.min_refetch_interval:
                return False
            if self._session is None:
                return False
            inflight = self._inflight = asyncio.get_running_loop().create_task(self._fetch_logged())
            inflight.add_done_callback(self._clear_inflight)
        return await asyncio.shield(inflight)

    def _clear_inflight(self, task: asyncio.Task[bool]) -> None:
        if self._inflight is task:
            self._inflight = None

    async def _refresh_loop(self) -> None:
        retry = _RETRY_FIRST
        while True:
            if self._loaded:
                delay = self.config.refresh_interval
            else:
                delay = min(retry, self.config.refresh_interval)
                retry = min(retry * 2, self.config.refresh_interval)
            await asyncio.sleep(delay)
            if self._inflight is None:
                await self._fetch_logged()

    async def _fetch_logged(self) -> bool:
        """Fetch and swap in the new keys; on failure keep the old ones. True if they changed."""
        try:
            return await self._fetch()
        except (JwksError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning(
                "JWKS %s: fetch failed, keeping %d known keys: %s",
                self.config.url,
                len(self._keys),
                str(exc) or type(exc).__name__,
            )
        except Exception:  # never let the refresh task die
            log.exception("JWKS %s: unexpected error while fetching", self.config.url)
        return False

    async def _fetch(self) -> bool:
        session = self._session
        if session is None:
            return False
        self._last_attempt = self._now()
        self.fetches += 1
        url = self.config.url
        async with session.get(url, headers={"Accept": "application/json"}) as response:
            if response.status != 200:
                raise JwksError(f"HTTP {response.status}")
            body = await response.content.read(MAX_JWKS_BYTES + 1)
        if len(body) > MAX_JWKS_BYTES:
            raise JwksError(f"document larger than {MAX_JWKS_BYTES} bytes")
        keys = parse_jwks(json.loads(body), self.allowed, url)
        changed = _fingerprint(keys) != _fingerprint(self._keys.keys)
        if changed:
            self._keys = KeySet(keys)
            self._version += 1
            log.info("JWKS %s: %d keys loaded (version %d)", url, len(keys), self._version)
        self._loaded = True
        return changed


def _fingerprint(keys: tuple[PinnedKey, ...] | list[PinnedKey]) -> list[tuple[Any, ...]]:
    return [(k.kid, k.algorithms, _key_id(k)) for k in keys]


def _key_id(key: PinnedKey) -> Any:
    material = key.key
    if isinstance(material, bytes):
        return material
    numbers = getattr(material, "public_numbers", None)
    if numbers is not None:
        return numbers()
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return material.public_bytes(Encoding.Raw, PublicFormat.Raw)


def shared_source(
    shared: dict[str, Any], config: JwksConfig, allowed: frozenset[str]
) -> JwksSource:
    """The configuration-wide source for this URL and settings (one fetcher per URL)."""
    registry: dict[tuple[Any, ...], JwksSource] = shared.setdefault("jwt.jwks", {})
    key = (config.model_dump_json(), tuple(sorted(allowed)))
    source = registry.get(key)
    if source is None:
        source = registry[key] = JwksSource(config, allowed)
    return source
