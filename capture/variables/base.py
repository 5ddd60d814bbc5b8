"""The base of all symbolic values on the interpreter's stack and in its locals."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..exc import Unsupported
from ..sources import Source

if TYPE_CHECKING:
    from ..interpreter import InstructionTranslator


class VariableTracker:
    """A symbolic value. `source` says where it came from (None if computed in the frame).

    A kind never imports the modules that know every kind (the builder, the container methods,
    the inliner): it asks the translator, `tx.wrap` / `tx.build` / `tx.inline` & co (interpreter.py).
    """

    def __init__(self, source: Source | None = None):
        self.source = source

    # -- what the interpreter asks of any value; defaults say "unsupported" --
    def is_python_constant(self) -> bool:
        try:
            self.as_python_constant()
            return True
        except Unsupported:
            return False

    def as_python_constant(self) -> Any:
        raise Unsupported(f"{self!r} is not a Python constant")

    def python_type(self) -> type:
        raise Unsupported(f"type() of {self!r}")

    def var_getattr(self, tx: "InstructionTranslator", name: str) -> "VariableTracker":
        raise Unsupported(f"attribute {name!r} of {self!r}")

    def call(self, tx: "InstructionTranslator", args: list["VariableTracker"],
             kwargs: dict[str, "VariableTracker"]) -> "VariableTracker":
        raise Unsupported(f"call to {self!r}")

    def getitem(self, tx: "InstructionTranslator", index: "VariableTracker") -> "VariableTracker":
        raise Unsupported(f"indexing {self!r}")

    def unpack(self, tx) -> list["VariableTracker"]:
        raise Unsupported(f"unpacking {self!r}")

    # -- mutation (recorded in the graph for tensors, in tx.output.side_effects otherwise) --
    def setitem(self, tx, index: "VariableTracker", value: "VariableTracker") -> None:
        raise Unsupported(f"item assignment on {self!r}")

    def delitem(self, tx, index: "VariableTracker") -> None:
        raise Unsupported(f"item deletion on {self!r}")

    def store_attr(self, tx, name: str, value: "VariableTracker") -> None:
        raise Unsupported(f"setting attribute {name!r} of {self!r}")

    def delete_attr(self, tx, name: str) -> None:
        raise Unsupported(f"deleting attribute {name!r} of {self!r}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class NullVariable(VariableTracker):
    """The NULL that LOAD_GLOBAL/LOAD_ATTR push next to a callable."""

    def __repr__(self) -> str:
        return "NULL"


NULL = NullVariable()
