"""DNS metrics: queries by transport, type and rcode; cache hits; upstream latency and errors."""

from __future__ import annotations

from typing import Any

import dns.rcode
import dns.rdatatype

from kairos_core import GatewayServices

TRACKED_TYPES = [
    "A",
    "AAAA",
    "ANY",
    "CAA",
    "CNAME",
    "DNSKEY",
    "DS",
    "HTTPS",
    "MX",
    "NAPTR",
    "NS",
    "PTR",
    "SOA",
    "SRV",
    "SVCB",
    "TLSA",
    "TXT",
]
_TYPE_LABELS = {int(dns.rdatatype.from_text(name)): name for name in TRACKED_TYPES}
_RCODE_LABELS = {code: dns.rcode.to_text(dns.rcode.Rcode(code)) for code in range(11)}
TRANSPORTS = ("udp", "tcp", "doh")
UPSTREAM_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class DnsMetrics:
    """Families created once per process; children looked up from small dicts per query."""

    def __init__(self, services: GatewayServices) -> None:
        metrics = services.metrics
        self._queries = metrics.counter(
            "kairos_dns_queries", "DNS answers sent.", ("transport", "qtype", "rcode")
        )
        hits = metrics.counter(
            "kairos_dns_cache_hits", "Answers served from the cache.", ("transport",)
        )
        misses = metrics.counter(
            "kairos_dns_cache_misses", "Questions the cache could not answer.", ("transport",)
        )
        self.cache_hits = {t: hits.labels(t) for t in TRANSPORTS}
        self.cache_misses = {t: misses.labels(t) for t in TRANSPORTS}
        self._latency = metrics.histogram(
            "kairos_dns_upstream_seconds",
            "Time from sending a question upstream to its answer.",
            ("pool", "protocol"),
            UPSTREAM_BUCKETS,
        )
        self._errors = metrics.counter(
            "kairos_dns_upstream_errors", "Failed upstream tries.", ("pool", "reason")
        )
        limited = metrics.counter(
            "kairos_dns_rate_limited", "Queries refused by the per-client limit.", ("transport",)
        )
        self.rate_limited = {t: limited.labels(t) for t in TRANSPORTS}
        malformed = metrics.counter(
            "kairos_dns_malformed", "Packets that were not valid DNS queries.", ("transport",)
        )
        self.malformed = {t: malformed.labels(t) for t in TRANSPORTS}
        self.cache_entries = metrics.gauge(
            "kairos_dns_cache_entries", "Answers held in the cache.", ("resolver",)
        )
        self._query_children: dict[tuple[str, str, int], Any] = {}

    def answered(self, transport: str, qtype: int, answer: bytes) -> None:
        """Count one answer sent."""
        key = (transport, _TYPE_LABELS.get(qtype, "OTHER"), answer[3] & 0xF)
        child = self._query_children.get(key)
        if child is None:
            child = self._queries.labels(key[0], key[1], _RCODE_LABELS.get(key[2], "OTHER"))
            self._query_children[key] = child
        child.inc()

    def upstream(self, pool: str, protocol: str) -> Any:
        """The latency histogram child of one pool and protocol (resolve once, keep it)."""
        return self._latency.labels(pool, protocol)

    def upstream_error(self, pool: str, reason: str) -> Any:
        """The error counter child of one pool and reason (resolve once, keep it)."""
        return self._errors.labels(pool, reason)
