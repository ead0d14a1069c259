"""The soak's mixed load: each client loops over GET, POST echo, streams, cache hits, WebSockets
and requests that must be refused, checking every answer; failures are judged by `Ledger`."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
from soak_backend import pattern

STREAM_SIZE = 1024 * 1024
STREAM_SEEDS = 4
CACHE_KEYS = 20
WS_MESSAGES = 20
KINDS = ("get", "post", "stream", "cached", "ws", "refused")
WEIGHTS = (40, 25, 6, 20, 3, 6)
SLACK = 2.0
"""Seconds after a stop during which a failure it explains still counts as expected."""


@dataclass
class Stop:
    """One backend stop: when it started and ended, and how (`term` or `kill`)."""

    backend: str
    mode: str
    began: float
    ended: float | None = None


@dataclass
class Ledger:
    """Counts answers by kind, judges failures against the stops, keeps the first surprises."""

    ok: Counter[str] = field(default_factory=Counter)
    expected: Counter[str] = field(default_factory=Counter)
    unexpected: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    stops: list[Stop] = field(default_factory=list)
    generations: set[int] = field(default_factory=set)
    cache_hits: int = 0

    def stopped(self, backend: str | None, began: float, modes: tuple[str, ...]) -> bool:
        """Whether `backend` was stopped (in one of `modes`) since `began` (or just before)."""
        now = time.monotonic()
        return backend is not None and any(
            s.backend == backend
            and s.mode in modes
            and s.began <= now
            and (s.ended is None or s.ended + SLACK >= began)
            for s in self.stops
        )

    def fail(self, kind: str, detail: str, expected_reason: str | None = None) -> None:
        """Record a failure: expected when a reason is given, otherwise a surprise."""
        if expected_reason is not None:
            self.expected[f"{kind}: {expected_reason}"] += 1
            return
        self.unexpected[kind] += 1
        if len(self.samples) < 40:
            self.samples.append(f"{time.strftime('%H:%M:%S')} {kind}: {detail[:300]}")


NAMED = re.compile(r"\b((?:api|bulk)-[a-z])\b")


class Client:
    """One load client: a loop of weighted random operations on a shared session."""

    def __init__(self, base: str, token: str, api_key: str, ledger: Ledger, seed: int) -> None:
        self.base = base
        self.ledger = ledger
        self.random = random.Random(seed)
        self.jwt = {"Authorization": f"Bearer {token}"}
        self.key = {"X-API-Key": api_key}

    async def run(self, session: aiohttp.ClientSession, running: asyncio.Event) -> None:
        """Run operations while `running` is set; return when it is cleared."""
        while running.is_set():
            kind = self.random.choices(KINDS, WEIGHTS)[0]
            began = time.monotonic()
            try:
                await getattr(self, kind)(session, began)
            except (TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
                self.ledger.fail(kind, f"{type(exc).__name__}: {exc}")

    async def get(self, session: aiohttp.ClientSession, began: float) -> None:
        """GET through jwt, rate-limit and transform: the generation header must come back."""
        item = self.random.randrange(1000)
        async with session.get(f"{self.base}/api/items/{item}", headers=self.jwt) as response:
            body = await response.read()
            if response.status != 200:
                return self._http_error("get", response.status, body, began)
            data = await response.json()
            generation = response.headers.get("X-Soak-Generation")
            sent = data["headers"].get("x-soak-generation")
            if data["path"] != f"/api/items/{item}" or generation is None or sent != generation:
                return self.ledger.fail("get", f"wrong answer {generation} {data}")
            self.ledger.generations.add(int(generation))
            self.ledger.ok["get"] += 1

    async def post(self, session: aiohttp.ClientSession, began: float) -> None:
        """POST a random body (up to 48 KiB) to the echo: it must come back byte for byte."""
        payload = os.urandom(self.random.randrange(1, 48 * 1024))
        async with session.post(
            f"{self.base}/api/echo", data=payload, headers=self.jwt
        ) as response:
            body = await response.read()
            if response.status != 200:
                return self._http_error("post", response.status, body, began)
            digest = response.headers.get("X-Body-SHA256")
            if body != payload or digest != hashlib.sha256(payload).hexdigest():
                return self.ledger.fail("post", f"echo differs ({len(body)}/{len(payload)} B)")
            self.ledger.ok["post"] += 1

    async def stream(self, session: aiohttp.ClientSession, began: float) -> None:
        """A 1 MiB streamed body; cut short only if its backend was killed meanwhile."""
        seed = self.random.randrange(STREAM_SEEDS)
        url = f"{self.base}/files/stream?size={STREAM_SIZE}&seed={seed}"
        async with session.get(url, headers=self.key) as response:
            if response.status != 200:
                return self._http_error("stream", response.status, await response.read(), began)
            backend = response.headers.get("X-Backend")
            try:
                body = await response.read()
            except (TimeoutError, aiohttp.ClientError) as exc:
                if self.ledger.stopped(backend, began, ("kill",)):
                    return self.ledger.fail("stream", str(exc), "body cut: backend SIGKILLed")
                raise
            if body != pattern(seed, STREAM_SIZE):
                return self.ledger.fail("stream", f"body differs ({len(body)} B) from {backend}")
            self.ledger.ok["stream"] += 1

    async def cached(self, session: aiohttp.ClientSession, began: float) -> None:
        """One of 20 cacheable URLs (max-age 30): the right key, often from the cache."""
        key = f"k{self.random.randrange(CACHE_KEYS)}"
        async with session.get(f"{self.base}/files/cached/{key}", headers=self.key) as response:
            body = await response.read()
            if response.status != 200:
                return self._http_error("cached", response.status, body, began)
            if (await response.json())["key"] != key:
                return self.ledger.fail("cached", f"wrong entry for {key}: {body[:100]!r}")
            if response.headers.get("X-Cache", "").upper().startswith("HIT"):
                self.ledger.cache_hits += 1
            self.ledger.ok["cached"] += 1

    async def ws(self, session: aiohttp.ClientSession, began: float) -> None:
        """A WebSocket session of 20 echoed messages; ended early only by its backend stopping."""
        backend: str | None = None
        async with session.ws_connect(f"{self.base}/ws", headers=self.key) as socket:
            try:
                hello = await socket.receive_str(timeout=10)
                backend = hello.removeprefix("hello from ")
                for index in range(WS_MESSAGES):
                    text = f"{index}:" + "x" * self.random.randrange(1, 2048)
                    await socket.send_str(text)
                    echoed = await socket.receive_str(timeout=10)
                    if echoed != text:
                        return self.ledger.fail("ws", f"echo differs at {index} from {backend}")
            except (TimeoutError, TypeError, aiohttp.ClientError, ConnectionError) as exc:
                # receive_str raises TypeError on a close frame: see why the session ended
                detail = f"{type(exc).__name__}: {exc} close={socket.close_code} from {backend}"
                if self.ledger.stopped(backend, began, ("term",)) and socket.close_code == 1001:
                    return self.ledger.fail("ws", detail, "closed 1001: backend stopping")
                if self.ledger.stopped(backend, began, ("kill",)):
                    return self.ledger.fail("ws", detail, "dropped: backend SIGKILLed")
                return self.ledger.fail("ws", detail)
            await socket.close()
        self.ledger.ok["ws"] += 1

    async def refused(self, session: aiohttp.ClientSession, began: float) -> None:
        """A bad JWT or a bad API key must get 401 (counted as expected refusals)."""
        if self.random.random() < 0.5:
            url, headers = f"{self.base}/api/items/1", {"Authorization": "Bearer not.a.token"}
        else:
            url, headers = f"{self.base}/files/cached/k1", {"X-API-Key": "wrong-key"}
        async with session.get(url, headers=headers) as response:
            await response.read()
            if response.status != 401:
                return self.ledger.fail("refused", f"{url} answered {response.status}, not 401")
            self.ledger.expected["refused: 401 for a bad credential"] += 1

    def _http_error(self, kind: str, status: int, body: bytes, began: float) -> None:
        """A non-200 answer: expected only for a POST in flight on a SIGKILLed backend."""
        text = body[:300].decode(errors="replace")
        named = NAMED.search(text)
        backend = named.group(1) if named else None
        if kind == "post" and status == 502 and self.ledger.stopped(backend, began, ("kill",)):
            return self.ledger.fail(kind, text, "502: POST in flight on a SIGKILLed backend")
        self.ledger.fail(kind, f"{status} {text}")
