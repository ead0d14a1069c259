"""The lean upstream connection layer: pooled HTTP/1.1 on asyncio.Protocol and httptools."""

from kairos_core.upstream.lean.client import LeanUpstreamClient

__all__ = ["LeanUpstreamClient"]
