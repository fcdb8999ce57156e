"""Error types, one per pipeline stage.

User mistakes (a bad cell file) derive from `SpecError` and are shown as
`file:line:col: message`, the source line and a caret. Anything else that
escapes the pipeline is a bug in gatespec and derives from `InternalError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Span:
    """A place in a cell file: 1-based line and column, plus the text it came from."""

    path: str
    line: int
    column: int
    source: str = field(default="", repr=False, compare=False)
    length: int = 1

    def source_line(self) -> str:
        lines = self.source.split("\n")  # as the parser counts lines: only \n ends one
        return lines[self.line - 1].rstrip("\r") if 0 < self.line <= len(lines) else ""


class GatespecError(Exception):
    """Base of every error gatespec raises on purpose."""


class SpecError(GatespecError):
    """A mistake in the user's cell file; carries where it is."""

    stage = "spec"

    def __init__(self, message: str, span: Span | None = None, note: str | None = None):
        super().__init__(message)
        self.message = message
        self.span = span
        self.note = note

    def render(self) -> str:
        """`file:line:col: error: message`, the source line and a caret under the column."""
        if self.span is None:
            text = f"error: {self.message}"
        else:
            s = self.span
            # control characters (a stray \r, a form feed) would garble the terminal
            line = "".join(c if c == "\t" or c.isprintable() else "\ufffd" for c in s.source_line())
            # keep tabs in the padding so the caret lines up under the column
            pad = "".join(c if c == "\t" else " " for c in line[: s.column - 1])
            width = min(s.length, len(line) - s.column + 1, 60)  # a whole long statement: 60
            caret = pad + "^" + "~" * max(0, width - 1)
            text = f"{s.path}:{s.line}:{s.column}: error: {self.message}\n    {line}\n    {caret}"
        if self.note:
            text += f"\nnote: {self.note}"
        return text

    def __str__(self) -> str:
        return self.render()


class ParseError(SpecError):
    """The text does not follow the cell grammar."""

    stage = "parse"


class CheckError(SpecError):
    """The text parses but does not describe a valid cell (names, sizes, updates, cycles)."""

    stage = "check"


class UsageError(GatespecError):
    """A bad command line: unknown cell name, missing file, refusal to overwrite."""


class InternalError(GatespecError):
    """A bug in gatespec itself, never the user's fault."""


class DeriveError(InternalError):
    """Derivation produced something inconsistent."""


class ScheduleError(InternalError):
    """Scheduling produced something inconsistent."""


class EmitError(InternalError):
    """A template or printer failed."""
