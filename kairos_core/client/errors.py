"""Exceptions the admin client raises: the server's own status, type and message, or why it failed."""

from __future__ import annotations

from typing import Any


class AdminClientError(Exception):
    """Base class of every error the admin client raises."""

    def __init__(self, message: str, url: str) -> None:
        super().__init__(message)
        self.message = message
        self.url = url


class Unreachable(AdminClientError):
    """The gateway's admin listener could not be reached (refused, unknown host, timed out)."""


class AdminError(AdminClientError):
    """The admin API answered with an error: its status, type and message."""

    def __init__(
        self, status: int, error_type: str, message: str, url: str, body: Any = None
    ) -> None:
        super().__init__(message, url)
        self.status = status
        self.type = error_type
        self.body = body

    def __str__(self) -> str:
        return f"{self.status} {self.type}: {self.message} ({self.url})"


class Unauthorized(AdminError):
    """401: the admin token is missing or wrong."""


class NotFound(AdminError):
    """404: no such admin endpoint (e.g. a plugin route whose plugin is not installed)."""


class ReloadFailed(AdminError):
    """422 from a reload: the new configuration was refused; the old one keeps serving."""


class InvalidResponse(AdminError):
    """The admin API answered with something the client cannot read (not the expected shape)."""


def error_from_response(status: int, body: Any, text: str, url: str) -> AdminError:
    """The exception for an error response, with the server's message when it sent one."""
    error_type = "http_error"
    message = text.strip()[:200] or f"HTTP {status}"
    if isinstance(body, dict):
        error_type = str(body.get("type") or error_type)
        message = str(body.get("message") or body.get("error") or message)
    kind: type[AdminError] = AdminError
    if status == 401:
        kind = Unauthorized
    elif status == 404:
        kind = NotFound
    elif status == 422 and error_type == "reload_failed":
        kind = ReloadFailed
    return kind(status, error_type, message, url, body)
