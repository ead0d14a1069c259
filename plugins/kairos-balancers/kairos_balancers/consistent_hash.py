"""Consistent hashing: requests with the same key (IP, header, cookie, path) stick to a backend."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kairos_balancers.candidate_cache import CandidateCache, Candidates, offered
from kairos_balancers.hash_keys import KeyReader, KeySource, key_hash, key_reader
from kairos_balancers.rings import HashRing, MaglevTable, identities, is_prime
from kairos_core import Backend, RequestContext, UpstreamPool

MAX_RING_POINTS = 2_000_000
"""Most points a ring may hold (virtual_nodes x total weight), to bound memory and build time."""


class ConsistentHashConfig(BaseModel):
    """Settings of the `consistent_hash` balancer."""

    model_config = ConfigDict(extra="forbid")
    key: KeySource = Field(
        "client_ip",
        description="What identifies a request: `client_ip`, `header`, `cookie` or `path`.",
    )
    header: str | None = Field(None, description="Header name, required with `key: header`.")
    cookie: str | None = Field(None, description="Cookie name, required with `key: cookie`.")
    include_query: bool = Field(
        False, description="With `key: path`, hash the query string too (`/a?x=1` != `/a`)."
    )
    fallback: Literal["client_ip", "round_robin"] = Field(
        "client_ip",
        description="What to do when a request lacks the key: hash its client IP, or take "
        "the backends in turn.",
    )
    algorithm: Literal["ring", "maglev"] = Field(
        "ring",
        description="`ring` (virtual nodes; a departing backend moves only its own keys) or "
        "`maglev` (O(1) lookup, even spread, slightly more keys move).",
    )
    virtual_nodes: int = Field(
        160, ge=1, le=10_000, description="Ring points per unit of backend weight (`ring`)."
    )
    table_size: int = Field(
        65537, ge=7, le=1_000_003, description="Maglev lookup table size, a prime (`maglev`)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> ConsistentHashConfig:
        if self.key == "header" and not self.header:
            raise ValueError("`key: header` needs `header:` (the header name to hash)")
        if self.key == "cookie" and not self.cookie:
            raise ValueError("`key: cookie` needs `cookie:` (the cookie name to hash)")
        if self.header and self.key != "header":
            raise ValueError("`header:` applies only with `key: header`")
        if self.cookie and self.key != "cookie":
            raise ValueError("`cookie:` applies only with `key: cookie`")
        if self.include_query and self.key != "path":
            raise ValueError("`include_query:` applies only with `key: path`")
        if not is_prime(self.table_size):
            raise ValueError(f"`table_size: {self.table_size}` must be a prime (e.g. 65537)")
        return self


Table = HashRing | MaglevTable


class ConsistentHash:
    """Maps each request's key to a backend through a table built once per candidate set."""

    __slots__ = ("_fallback_ip", "_identities", "_next", "_read_key", "_tables")

    def __init__(self, config: ConsistentHashConfig, backends: Sequence[Backend]) -> None:
        self._identities = identities(backends)
        self._read_key: KeyReader | None = (
            None
            if config.key == "client_ip"
            else key_reader(config.key, config.header, config.cookie, config.include_query)
        )
        self._fallback_ip = config.fallback == "client_ip"
        self._next = 0
        virtual_nodes, size = config.virtual_nodes, config.table_size
        if config.algorithm == "ring":
            points = virtual_nodes * max(sum(b.weight for b in backends), len(backends))
            if points > MAX_RING_POINTS:
                raise ValueError(
                    f"the ring would hold {points} points (virtual_nodes {virtual_nodes} x "
                    f"total weight); keep it under {MAX_RING_POINTS}: lower virtual_nodes "
                    "or the weights"
                )

            known_points: dict[tuple[str, int], list[int]] = {}

            def build(candidates: Candidates) -> Table:
                backends, weights = offered(candidates)
                names = self._names(backends)
                return HashRing(backends, names, weights, virtual_nodes, known_points)

        else:

            def build(candidates: Candidates) -> Table:
                backends, weights = offered(candidates)
                return MaglevTable(backends, self._names(backends), weights, size)

        self._tables: CandidateCache[Table] = CandidateCache(build, limit=16)

    def _names(self, candidates: Sequence[Backend]) -> list[str]:
        known = self._identities
        return [known.get(b) or b.name for b in candidates]

    def warm(self, candidates: Sequence[Backend]) -> None:
        """Build the table for `candidates` now (at config load) rather than on first use."""
        if candidates:
            self._tables.get(candidates)

    def pick(self, ctx: RequestContext | None, candidates: Sequence[Backend]) -> Backend | None:
        """The backend owning this request's key; in turn when there is no key at all."""
        if len(candidates) == 1:
            return candidates[0]
        key: str | None = None
        if ctx is not None:
            read_key = self._read_key
            key = ctx.client_ip if read_key is None else read_key(ctx)
            if key is None and self._fallback_ip:
                key = ctx.client_ip
        table = self._tables.get(candidates)
        if not key:
            backends = table.backends
            position = self._next
            self._next = position + 1
            return backends[position % len(backends)]
        return table.lookup(key_hash(key))


def build_consistent_hash(config: ConsistentHashConfig, pool: UpstreamPool) -> ConsistentHash:
    """Build the balancer of one pool and its table for the currently available backends."""
    balancer = ConsistentHash(config, pool.backends)
    balancer.warm(pool.candidates)
    return balancer
