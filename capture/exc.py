"""Exceptions raised while capturing."""
from __future__ import annotations

DEFAULT_HINT = ("move this construct out of the compiled function, or into a function marked "
                "kiln.disable (which runs eagerly between graphs)")
FULLGRAPH_HINT = "or drop fullgraph=True: the graph then breaks here and the rest still compiles"


class Unsupported(Exception):
    """A construct capture cannot trace (yet). Carries where it happened and a hint."""

    def __init__(self, reason: str, hint: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.hint = hint or DEFAULT_HINT
        self.filename: str | None = None
        self.lineno: int | None = None
        self.source_line: str = ""
        # Set by the top-level translator: the instruction count at which its current
        # instruction began, where a graph break would stop (capture/breaks.py).
        self.break_count: int | None = None

    def locate(self, filename: str, lineno: int | None, source_line: str = "") -> None:
        if self.filename is None:
            self.filename, self.lineno, self.source_line = filename, lineno, source_line.strip()

    @property
    def location(self) -> str:
        return f"{self.filename}:{self.lineno}" if self.filename else "<unknown location>"

    def __str__(self) -> str:
        text = f"{self.reason}\n  at {self.location}"
        if self.source_line:
            text += f"\n      {self.source_line}"
        return f"{text}\n  hint: {self.hint}"


class TorchOpError(Exception):
    """A tensor op raised while running on fake tensors: most likely the user's own error
    (bad shapes, bad arguments). The caller runs the function eagerly so the real error
    surfaces from the real op."""

    def __init__(self, description: str, error: BaseException):
        super().__init__(f"{description} raised {type(error).__name__}: {error}")
        self.error = error


class FallbackWarning(UserWarning):
    """Warned once when a function runs eagerly instead of compiled."""
