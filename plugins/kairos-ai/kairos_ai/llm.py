"""The model endpoint: one chat completion per decision through the official `openai` client."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import openai

from kairos_ai.config import EndpointConfig
from kairos_ai.prompt import TOOL_NAME, CandidatePrompt

log = logging.getLogger("kairos.ai")

HTTP_LIBRARY_LOGGERS = ("httpx", "httpx2")
"""The `openai` client's HTTP library logs every call at INFO under one of these names."""

KEYLESS = "no-key"
"""The client library insists on a key; keyless endpoints get this, and no Authorization header."""


@dataclass(slots=True)
class ModelAnswer:
    """What one call produced: a backend name, or why there is none."""

    backend: str | None
    failure: str | None
    """None on success; else `timeout`, `connection_error`, `http_error`, `invalid_answer`, `error`."""
    seconds: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    detail: str = ""
    """The raw answer text or the error, for debug logs and `routes test` (never a credential)."""


class ModelClient:
    """An AsyncOpenAI client bound to one endpoint and model, with no retries of its own."""

    def __init__(
        self, config: EndpointConfig, timeout: float, env: Mapping[str, str] = os.environ
    ) -> None:
        self.config = config
        self.mode = "json_schema" if config.mode == "auto" else config.mode
        headers = dict(config.headers)
        for header, variable in config.headers_from_env.items():
            headers[header] = _required(env, variable, f"endpoint.headers_from_env.{header}")
        key = KEYLESS
        omit_bearer = True
        if config.api_key_env is not None:
            secret = _required(env, config.api_key_env, "endpoint.api_key_env")
            if config.api_key_header:
                headers[config.api_key_header] = secret
            else:
                key, omit_bearer = secret, False
        quiet_http_library_logs()
        self._extra_headers: dict[str, Any] = (
            {"Authorization": openai.Omit()} if omit_bearer else {}
        )
        self._client = openai.AsyncOpenAI(
            api_key=key,
            base_url=config.base_url,
            organization=config.organization,
            project=config.project,
            default_headers=headers or None,
            default_query=config.query or None,
            timeout=timeout,
            max_retries=0,
        )

    async def ask(self, candidate: CandidatePrompt, messages: list[dict[str, str]]) -> ModelAnswer:
        """One call (two if `auto` learns the endpoint lacks JSON schema); no timeout applied here."""
        started = time.perf_counter()
        try:
            try:
                completion = await self._create(candidate, messages, self.mode)
            except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
                if self.config.mode != "auto" or self.mode != "json_schema":
                    raise
                log.info(
                    "model endpoint %s rejected a JSON-schema response format (%s): using tool calls",
                    self.config.base_url,
                    exc.status_code,
                )
                self.mode = "tool_call"
                completion = await self._create(candidate, messages, self.mode)
        except openai.APITimeoutError:
            return ModelAnswer(None, "timeout", time.perf_counter() - started, detail="timed out")
        except openai.APIConnectionError as exc:
            return ModelAnswer(
                None, "connection_error", time.perf_counter() - started, detail=str(exc)
            )
        except openai.APIStatusError as exc:
            return ModelAnswer(
                None, "http_error", time.perf_counter() - started, detail=f"HTTP {exc.status_code}"
            )
        except openai.OpenAIError as exc:
            return ModelAnswer(None, "error", time.perf_counter() - started, detail=str(exc))
        seconds = time.perf_counter() - started
        usage = getattr(completion, "usage", None)
        answer = parse_answer(completion)
        answer.seconds = seconds
        if usage is not None:
            answer.prompt_tokens = usage.prompt_tokens or 0
            answer.completion_tokens = usage.completion_tokens or 0
        return answer

    async def _create(
        self, candidate: CandidatePrompt, messages: list[dict[str, str]], mode: str
    ) -> Any:
        config = self.config
        extra: dict[str, Any] = {}
        if config.temperature is not None:
            extra["temperature"] = config.temperature
        if mode == "json_schema":
            extra["response_format"] = candidate.response_format
        else:
            extra["tools"] = candidate.tools
            extra["tool_choice"] = candidate.tool_choice
        return await self._client.chat.completions.create(
            model=config.model,
            messages=messages,  # type: ignore[arg-type]
            max_tokens=config.max_tokens,
            extra_headers=self._extra_headers,
            **extra,
        )

    def warm_up(self) -> None:
        """Do the client's lazy set-up now (~0.1-0.4 s of imports), not in the first decision."""
        _ = self._client.chat.completions
        try:
            import anyio

            anyio.Event()  # imports anyio's asyncio backend, which the HTTP pool needs
        except (ImportError, RuntimeError):
            pass

    async def close(self) -> None:
        """Close pooled connections to the endpoint."""
        await self._client.close()


def parse_answer(completion: Any) -> ModelAnswer:
    """The backend named by a completion (tool call arguments or JSON content), if well-formed."""
    try:
        message = completion.choices[0].message
    except (AttributeError, IndexError, TypeError):
        return ModelAnswer(None, "invalid_answer", detail="no choices")
    calls = getattr(message, "tool_calls", None) or []
    if calls:
        function = getattr(calls[0], "function", None)
        if function is None or function.name != TOOL_NAME:
            return ModelAnswer(None, "invalid_answer", detail="unexpected tool call")
        text = function.arguments or ""
    else:
        text = message.content or ""
    try:
        data = json.loads(text)
    except ValueError:
        return ModelAnswer(None, "invalid_answer", detail=text[:500])
    backend = data.get("backend") if isinstance(data, dict) else None
    if not isinstance(backend, str) or not backend:
        return ModelAnswer(None, "invalid_answer", detail=text[:500])
    return ModelAnswer(backend, None, detail=text[:500])


def quiet_http_library_logs() -> None:
    """No INFO line per model call (one per request at worst): WARNING, unless a level is set."""
    for name in HTTP_LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)


def _required(env: Mapping[str, str], variable: str, field: str) -> str:
    value = env.get(variable)
    if not value:
        raise ValueError(f"{field}: environment variable {variable!r} is not set")
    return value
