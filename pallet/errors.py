"""The one error type a user sees: a message located in a source file.

Every stage (reader, Stevedore, evaluator, compiler, CLI) raises PalletError with the span of
the form at fault; the CLI prints `file:line:col: message`, the source line and a caret, and
exits 2. Nothing else should reach a user as a traceback.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Source:
    """A named text the reader read; spans point into it."""

    name: str
    text: str = field(repr=False)

    def line(self, number: int) -> str:
        lines = self.text.splitlines()
        return lines[number - 1] if 0 < number <= len(lines) else ""


@dataclass(frozen=True)
class Span:
    """Where a form starts and ends: 1-based lines and columns."""

    source: Source = field(compare=False, repr=False)
    line: int
    column: int
    end_line: int = 0
    end_column: int = 0

    @property
    def file(self) -> str:
        return self.source.name

    def __str__(self) -> str:
        return f"{self.source.name}:{self.line}:{self.column}"


class PalletError(Exception):
    """A user-facing error, located when a span is known."""

    def __init__(self, message: str, span: Span | None = None, notes: tuple[str, ...] = ()):
        super().__init__(message)
        self.message = message
        self.span = span
        self.notes = notes

    def format(self) -> str:
        if self.span is None:
            head = f"error: {self.message}"
            return "\n".join((head, *self.notes))
        line = self.span.source.line(self.span.line)
        caret_pad = "".join("\t" if c == "\t" else " " for c in line[: self.span.column - 1])
        width = 1
        if self.span.end_line == self.span.line and self.span.end_column > self.span.column:
            width = self.span.end_column - self.span.column
        parts = [f"{self.span}: {self.message}", f"  {line}", f"  {caret_pad}{'^' * width}"]
        parts.extend(self.notes)
        return "\n".join(parts)

    def __str__(self) -> str:
        return self.format()


class InternalError(PalletError):
    """A located error for a failure Pallet has no message of its own for: the evaluator's
    last line of defence against a Python exception reaching the user. It is still a clean,
    located error with exit 2; tests treat it as a bug (tests/test_any_arguments.py)."""

    def __init__(self, message: str, span: Span | None = None, notes: tuple[str, ...] = ()):
        super().__init__(message, span, (*notes, "  (Pallet has no better message for this "
                                         "yet: please report it)"))
