"""The prompt: an instruction, the candidate backends, the request; and the answer's schema."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kairos_ai.config import BackendDescription

TOOL_NAME = "choose_backend"
SCHEMA_NAME = "backend_choice"


@dataclass(frozen=True, slots=True)
class CandidatePrompt:
    """What depends only on which backends are offered: the system message and the schemas."""

    names: tuple[str, ...]
    system: str
    response_format: dict[str, Any]
    tools: list[dict[str, Any]]
    tool_choice: dict[str, Any]


class PromptBuilder:
    """Renders prompts for one pool; candidate-set parts are memoised (few distinct sets)."""

    def __init__(self, instruction: str, descriptions: Mapping[str, BackendDescription]) -> None:
        self.instruction = instruction.strip()
        self.descriptions = dict(descriptions)
        self._by_names: dict[tuple[str, ...], CandidatePrompt] = {}

    def for_candidates(self, names: tuple[str, ...]) -> CandidatePrompt:
        """The system message and answer schemas offering exactly these backends."""
        found = self._by_names.get(names)
        if found is None:
            if len(self._by_names) > 256:
                self._by_names.clear()
            found = self._by_names[names] = self._render(names)
        return found

    def messages(
        self, candidate: CandidatePrompt, request: Mapping[str, Any]
    ) -> list[dict[str, str]]:
        """The chat messages for one request document."""
        return [
            {"role": "system", "content": candidate.system},
            {
                "role": "user",
                "content": json.dumps(request, ensure_ascii=False, separators=(",", ":")),
            },
        ]

    def _render(self, names: tuple[str, ...]) -> CandidatePrompt:
        lines = [self.instruction, "", "Backends:"]
        for name in names:
            about = self.descriptions.get(name)
            line = f"- {name}"
            if about is not None and about.description:
                line += f": {about.description.strip()}"
            if about is not None and about.tags:
                line += f" [tags: {', '.join(about.tags)}]"
            lines.append(line)
        lines += [
            "",
            "The user message is the HTTP request as JSON. Answer with the name of exactly one "
            "backend from the list, in the `backend` field.",
        ]
        schema = answer_schema(names)
        return CandidatePrompt(
            names,
            "\n".join(lines),
            {
                "type": "json_schema",
                "json_schema": {"name": SCHEMA_NAME, "strict": True, "schema": schema},
            },
            [
                {
                    "type": "function",
                    "function": {
                        "name": TOOL_NAME,
                        "description": "Send the request to this backend.",
                        "parameters": schema,
                    },
                }
            ],
            {"type": "function", "function": {"name": TOOL_NAME}},
        )


def answer_schema(names: Sequence[str]) -> dict[str, Any]:
    """The JSON schema of an answer: one backend name out of `names`."""
    return {
        "type": "object",
        "properties": {"backend": {"type": "string", "enum": list(names)}},
        "required": ["backend"],
        "additionalProperties": False,
    }
