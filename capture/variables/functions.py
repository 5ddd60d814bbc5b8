"""Python builtins and user functions."""
from __future__ import annotations

import builtins
import math
import operator


from ..exc import Unsupported
from .base import VariableTracker
from .constant import wrap_constant

# Builtins without side effects: with constant arguments they are folded at trace time.
PURE_BUILTINS = {builtins.abs, builtins.min, builtins.max, builtins.len, builtins.int,
                 builtins.float, builtins.bool, builtins.round, builtins.pow, builtins.divmod,
                 builtins.isinstance, builtins.tuple, builtins.list, builtins.sum, builtins.str,
                 builtins.any, builtins.all, builtins.range}
PURE_BUILTINS |= {value for value in vars(math).values() if callable(value)}


class BuiltinVariable(VariableTracker):
    """A builtin function (len, abs, math.sqrt...) or a method of an immutable constant."""

    def __init__(self, fn, source=None, pure: bool = False):
        super().__init__(source)
        self.fn = fn
        self.pure = pure or fn in PURE_BUILTINS

    def as_python_constant(self):
        return self.fn

    def call(self, tx, args, kwargs) -> VariableTracker:
        from .tensor import TensorVariable
        special = TENSOR_BUILTINS.get(self.fn)
        if special is not None and any(isinstance(arg, TensorVariable) for arg in args):
            return special(tx, args, kwargs)
        name = getattr(self.fn, "__qualname__", repr(self.fn))
        if not self.pure:
            raise Unsupported(f"call to builtin {name}()",
                              hint="builtins with side effects (print, open, ...) cannot be captured; "
                                   "remove it or run without fullgraph=True")
        try:
            constant_args = [arg.as_python_constant() for arg in args]
            constant_kwargs = {key: value.as_python_constant() for key, value in kwargs.items()}
        except Unsupported:
            raise Unsupported(f"call to builtin {name}() with non-constant arguments") from None
        result = self.fn(*constant_args, **constant_kwargs)
        if isinstance(result, range):
            result = tuple(result)
        return wrap_constant(result)

    def __repr__(self) -> str:
        return f"BuiltinVariable({getattr(self.fn, '__qualname__', self.fn)!r})"


def _len_of_tensor(tx, args, kwargs):
    shape = args[0].example.shape
    if not shape:
        raise Unsupported("len() of a 0-d tensor")
    return wrap_constant(shape[0])


def _isinstance_of_tensor(tx, args, kwargs):
    return wrap_constant(isinstance(args[0].example, args[1].as_python_constant()))


def _abs_of_tensor(tx, args, kwargs):
    return tx.output.call_op("call_function", operator.abs, list(args), {})


# Builtins that have a meaning on tensors without reading their data.
TENSOR_BUILTINS = {builtins.len: _len_of_tensor, builtins.isinstance: _isinstance_of_tensor,
                   builtins.abs: _abs_of_tensor}


class UserFunctionVariable(VariableTracker):
    """A Python function defined by the user. Inlining it is future work."""

    def __init__(self, fn, source=None):
        super().__init__(source)
        self.fn = fn

    def as_python_constant(self):
        return self.fn

    def call(self, tx, args, kwargs) -> VariableTracker:
        code = getattr(self.fn, "__code__", None)
        where = f" ({code.co_filename}:{code.co_firstlineno})" if code else ""
        raise Unsupported(f"call to non-torch function {getattr(self.fn, '__qualname__', self.fn)}{where}",
                          hint="calls into user functions are not inlined yet; make it a torch op, "
                               "or run without fullgraph=True to fall back to eager")

    def __repr__(self) -> str:
        return f"UserFunctionVariable({getattr(self.fn, '__qualname__', self.fn)})"
