"""What the admin API can ask of the gateway, whether it runs in one process or many."""

from __future__ import annotations

from typing import Any, Protocol


class ControlPlane(Protocol):
    """Operations the admin API performs; one implementation per process model."""

    def health(self) -> dict[str, Any]:
        """`{"status": "ok"|"degraded", ...}` for the whole gateway."""
        ...

    async def readiness(self) -> dict[str, Any]:
        """`{"ready": bool, "checks": {...}}`: config loaded, listeners bound, dependencies up."""
        ...

    async def broadcast(self, command: str, payload: dict[str, Any]) -> list[Any]:
        """Run a plugin command in every worker; one result per worker (raises if unknown)."""
        ...

    async def metrics(self) -> dict[str, Any]:
        """A metrics snapshot of the whole gateway (merged across workers)."""
        ...

    async def inspect(self, view: str) -> Any:
        """A read-only view: `routes`, `upstreams`, `config` (redacted) or `plugins`."""
        ...

    async def validate(self, text: str) -> dict[str, Any]:
        """Check a candidate configuration without applying it."""
        ...

    async def reload(self) -> dict[str, Any]:
        """Reload the configuration file everywhere; a bad file keeps the current one."""
        ...
