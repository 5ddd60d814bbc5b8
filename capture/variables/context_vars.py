"""contextvars.ContextVar read by the traced code (transformers' CompileableContextVar,
kernels' _ACTIVE_KERNEL_FUNCS): `var.get()` is the value in the caller's context, read now
and guarded through `var.get()` on every call; `var.set()` / `var.reset()` change the context:
the graph breaks there and they run for real.
"""
from __future__ import annotations

import math

from ..exc import TorchOpError, Unsupported
from ..sources import AttrSource, ContextVarValueSource
from .base import VariableTracker
from .constant_values import wrap_constant
from .opaque import OpaqueVariable

_HINT = "the graph breaks where the context changes; reads (var.get()) are captured and guarded"


def _default_repr(value) -> str:
    """A default that spells itself in a source expression (None, bool, int, str, finite float)."""
    if value is None or type(value) in (bool, int, str) or (type(value) is float and math.isfinite(value)):
        return repr(value)
    raise Unsupported(f"ContextVar.get() with a default of type {type(value).__name__}")


class ContextVarVariable(VariableTracker):
    """A ContextVar read through its source (guarded by identity)."""

    def __init__(self, value, source):
        super().__init__(source)
        self.value = value

    def python_type(self) -> type:
        return type(self.value)

    def var_getattr(self, tx, name: str) -> VariableTracker:
        if name == "get":
            return _ContextVarGet(self)
        if name == "name":
            return wrap_constant(self.value.name)
        source = AttrSource(self.source, name)  # set/reset: the graph breaks at the call, not here
        return OpaqueVariable(None, source, f"{source.name()} (ContextVar.{name} changes the context)", _HINT)

    def read(self, tx, args: list, kwargs: dict) -> VariableTracker:
        if kwargs or len(args) > 1 or not all(arg.is_python_constant() for arg in args):
            raise Unsupported("ContextVar.get() with keyword or non-constant arguments")
        source = ContextVarValueSource(self.source, _default_repr(args[0].as_python_constant()) if args else "")
        try:
            value = tx.frame.fetch(source)
        except LookupError as error:  # unset, no default: eager raises it
            raise TorchOpError(f"{self.value.name}.get()", error) from error
        return tx.wrap(value, source)

    def __repr__(self) -> str:
        return f"ContextVarVariable({self.value.name!r})"


class _ContextVarGet(VariableTracker):
    """The bound method var.get."""

    def __init__(self, var: ContextVarVariable):
        super().__init__(None)
        self.var = var

    def call(self, tx, args, kwargs) -> VariableTracker:
        return self.var.read(tx, args, kwargs)

    def __repr__(self) -> str:
        return f"{self.var!r}.get"
