"""Configuration errors that name the file, the field path and, where known, the line."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pydantic import ValidationError

Loc = tuple[str | int, ...]


def format_loc(loc: Loc) -> str:
    """Render a field path the way users write it: `routes[3].upstream.backends[0].url`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong with a configuration."""

    loc: Loc
    message: str
    line: int | None = None

    def render(self, source: str) -> str:
        """One line: `file:line: field: message`."""
        where = f"{source}:{self.line}" if self.line else source
        return f"{where}: {format_loc(self.loc)}: {self.message}"


class ConfigError(Exception):
    """A configuration that cannot be used; `str()` lists every problem found."""

    def __init__(self, source: str, problems: Iterable[ConfigProblem]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__(self.render())

    def render(self) -> str:
        """All problems, one per line."""
        return "\n".join(p.render(self.source) for p in self.problems)

    @classmethod
    def single(cls, source: str, loc: Loc, message: str, line: int | None = None) -> ConfigError:
        """An error with one problem."""
        return cls(source, [ConfigProblem(loc, message, line)])


def problems_from_validation(
    exc: ValidationError, prefix: Loc = (), lines: Mapping[Loc, int] | None = None
) -> list[ConfigProblem]:
    """Translate a pydantic ValidationError into problems located under `prefix`."""
    problems = []
    for err in exc.errors(include_url=False):
        loc: Loc = prefix + tuple(_clean_loc(err["loc"]))
        message = err["msg"]
        located = (err.get("ctx") or {}).get("error")
        if located is not None and hasattr(located, "loc"):
            loc = prefix + tuple(located.loc)
            message = located.message
        elif err["type"] == "extra_forbidden":
            message = "unknown field (check the spelling; see the configuration reference)"
        elif message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        elif err["type"] == "missing":
            message = "required field is missing"
        problems.append(ConfigProblem(loc, message, _line_for(loc, lines)))
    return problems


def _clean_loc(loc: Iterable[str | int]) -> list[str | int]:
    """Drop pydantic's union-branch markers (such as `str` or `UpstreamConfig`) from a loc."""
    parts: list[str | int] = []
    for part in loc:
        if isinstance(part, str) and (
            part[:1].isupper() or part in ("str", "int", "function-before")
        ):
            continue
        parts.append(part)
    return parts


def _line_for(loc: Loc, lines: Mapping[Loc, int] | None) -> int | None:
    if not lines:
        return None
    for end in range(len(loc), -1, -1):
        line = lines.get(loc[:end])
        if line is not None:
            return line
    return None
