"""Values capture does not trace but can carry to a graph break: C extension functions,
numpy arrays, functions marked `kiln.disable`, any object of an unknown kind read through
a source. Using one (calling it, reading its truth, an operator on it) is Unsupported, which
breaks the graph there; the break entry fetches the real object through its source."""
from __future__ import annotations

from typing import Any

from ..exc import Unsupported
from ..sources import AttrSource
from .base import VariableTracker

DISABLE_HINT = "the function is marked kiln.disable: it always runs eagerly, between graphs"


def _type_name(value: Any) -> str:
    cls = type(value)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


class OpaqueVariable(VariableTracker):
    """A real object known only by its source (never guarded: it is always fetched anew)."""

    def __init__(self, value: Any, source, why: str, hint: str | None = None):
        super().__init__(source)
        self.value, self.why, self.hint = value, why, hint

    def _unsupported(self, what: str) -> Unsupported:
        return Unsupported(f"{what} {self.why}", hint=self.hint)

    def var_getattr(self, tx, name: str) -> VariableTracker:
        source = AttrSource(self.source, name)
        return OpaqueVariable(None, source, source.name(), self.hint)

    def has_attribute(self, tx, name: str) -> bool:  # an attribute read is lazy: it may not exist
        raise self._unsupported(f"hasattr(..., {name!r}) of")

    def call(self, tx, args, kwargs) -> VariableTracker:
        raise self._unsupported("call to")

    def truth(self, tx) -> bool:
        raise self._unsupported("truth of")

    def python_type(self) -> type:
        raise self._unsupported("type() of")

    def getitem(self, tx, index) -> VariableTracker:
        raise self._unsupported("indexing")

    def unpack(self, tx) -> list[VariableTracker]:
        raise self._unsupported("unpacking")

    def __repr__(self) -> str:
        return f"OpaqueVariable({self.why})"


def opaque(tx, value: Any, source) -> OpaqueVariable:
    """The builder's last resort for values of kinds it does not know."""
    if getattr(value, "_kiln_disable", False):
        name = getattr(value, "__qualname__", repr(value))
        return OpaqueVariable(value, source, f"{name}() (kiln.disable)", DISABLE_HINT)
    return OpaqueVariable(value, source, f"{source.name()} (a {_type_name(value)})",
                          "capture cannot trace this kind of value: the graph breaks where it is used")


class AllowedFunctionVariable(VariableTracker):
    """A function marked `kiln.allow_in_graph`: called as one node of the graph (run on fake
    tensors to learn its outputs), its body never traced."""

    def __init__(self, fn, source=None):
        super().__init__(source)
        self.fn = fn

    def as_python_constant(self):
        return self.fn

    def call(self, tx, args, kwargs) -> VariableTracker:
        return tx.output.call_op("call_function", self.fn, list(args), dict(kwargs))

    def __repr__(self) -> str:
        return f"AllowedFunctionVariable({getattr(self.fn, '__qualname__', self.fn)})"
