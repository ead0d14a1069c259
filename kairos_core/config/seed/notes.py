"""What a seed conversion reports: errors, warnings, and where native fields came from."""

from __future__ import annotations

from collections.abc import Mapping

from kairos_core.config.errors import ConfigError, ConfigProblem, Loc


class ConversionNotes:
    """Problems and warnings about seed fields, and the native -> seed line map."""

    def __init__(self, source: str, seed_lines: Mapping[Loc, int]) -> None:
        self.source = source
        self.seed_lines = seed_lines
        self.lines: dict[Loc, int] = {}
        """Native field path -> line of the seed field it came from."""
        self.problems: list[ConfigProblem] = []
        self.warnings: list[ConfigProblem] = []

    def line(self, loc: Loc) -> int | None:
        """The line of the seed field at `loc`, or of its closest known parent."""
        for end in range(len(loc), -1, -1):
            line = self.seed_lines.get(loc[:end])
            if line is not None:
                return line
        return None

    def warn(self, loc: Loc, message: str) -> None:
        """Record a warning about the seed field at `loc`."""
        self.warnings.append(ConfigProblem(loc, message, self.line(loc)))

    def fail(self, loc: Loc, message: str) -> None:
        """Record an error about the seed field at `loc`."""
        self.problems.append(ConfigProblem(loc, message, self.line(loc)))

    def trace(self, native: Loc, seed: Loc) -> None:
        """Errors found later at the native field `native` point at the seed field's line."""
        line = self.line(seed)
        if line is not None:
            self.lines[native] = line

    def check(self) -> None:
        """Raise a ConfigError listing every problem recorded, if any."""
        if self.problems:
            raise ConfigError(self.source, self.problems)

    def rendered_warnings(self) -> tuple[str, ...]:
        """The warnings as `file:line: field: message`, in file order."""
        ordered = sorted(self.warnings, key=lambda w: w.line or 0)
        return tuple(w.render(self.source) for w in ordered)
