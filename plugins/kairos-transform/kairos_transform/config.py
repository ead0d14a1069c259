"""The `transform` plugin's settings: ordered actions on headers, path, query, body and status."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ByteSize, Field, field_validator, model_validator

from kairos_transform.actions import (
    BodyAction,
    Condition,
    NamedAction,
    PathRewrite,
    StatusSelector,
    Strict,
    check_header_actions,
    check_status_selector,
)

Policy = Literal["error", "pass"]


class _BodyRules(Strict):
    body: list[BodyAction] = Field(
        default_factory=list, description="JSON body edits, in order (JSON content types only)."
    )
    body_limit: ByteSize = Field(
        ByteSize(1024 * 1024), gt=0, description="Largest (decoded) body the edits buffer."
    )
    on_invalid: Policy = Field(
        "error", description="Body that is not valid JSON (or cannot be decoded): error or pass."
    )
    on_oversize: Policy = Field("error", description="Body over `body_limit`: error or pass.")


class RequestRules(_BodyRules):
    """Edits of the request on its way upstream: headers, then path, then query, then body."""

    headers: list[NamedAction] = Field(default_factory=list)
    path: list[PathRewrite] = Field(default_factory=list, description="One rewrite or a list.")
    query: list[NamedAction] = Field(default_factory=list)

    _headers = field_validator("headers")(check_header_actions)

    @field_validator("path", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _no_status_conditions(self) -> RequestRules:
        actions: list[Any] = [*self.headers, *self.path, *self.query, *self.body]
        if any(a.when is not None and a.when.status is not None for a in actions):
            raise ValueError("`when.status` only applies to response actions")
        return self


class StatusMapping(Strict):
    """Change the status of matching responses, optionally with a new body."""

    from_: StatusSelector = Field(
        alias="from", description="Backend status (404) or class ('5xx')."
    )
    to: int = Field(ge=200, le=599)
    body: Any = Field(None, description="New body (JSON value, or text); absent: keep the body.")
    content_type: str | None = Field(
        None, description="Content-Type of `body`; JSON for objects, text/plain for text."
    )
    when: Condition | None = None

    _from = field_validator("from_")(check_status_selector)

    @property
    def replaces_body(self) -> bool:
        """True when the mapping gives a body of its own (even JSON null)."""
        return "body" in self.model_fields_set


class ResponseRules(_BodyRules):
    """Edits of the response on its way back: status, then body, then headers."""

    status: list[StatusMapping] = Field(
        default_factory=list, description="Status mappings; the first that matches applies."
    )
    headers: list[NamedAction] = Field(default_factory=list)
    recompress: bool = Field(
        True,
        description="Re-encode an edited body with the backend's coding; false sends identity.",
    )

    _headers = field_validator("headers")(check_header_actions)


class TransformConfig(Strict):
    """Settings of the `transform` plugin."""

    request: RequestRules = Field(default_factory=RequestRules)
    response: ResponseRules = Field(default_factory=ResponseRules)
