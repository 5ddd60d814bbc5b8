"""Errors of the bytecode-generation layer (torch-free, so no capture.exc import)."""
from __future__ import annotations


class BytecodeError(RuntimeError):
    """Internal error: a generated code object failed verification. It is raised before the
    code object can run, because CPython may crash on malformed bytecode."""


class CannotResume(Exception):
    """A construct the resume/break generator does not handle (generators, cell variables, a
    break inside an exception handler...). The tracer turns it into `Unsupported`."""

    def __init__(self, reason: str, hint: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.hint = hint or "move this construct out of the compiled function"
