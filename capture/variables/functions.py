"""Python builtins and user functions."""
from __future__ import annotations

import builtins
import math
import operator
from typing import Any, Callable

import torch

from ..exc import TorchOpError, Unsupported
from ..guards import Guard
from ..sources import AttrSource
from .base import VariableTracker
from .constant_values import wrap_constant
from .containers import BaseListVariable, ListVariable, TupleVariable
from .grad_mode import GradModeContextVariable, decorated_grad_mode
from .symbolic import SymNodeVariable
from .tensor import TensorVariable

# Builtins without side effects: with constant arguments they are folded at trace time.
PURE_BUILTINS = {builtins.abs, builtins.min, builtins.max, builtins.len, builtins.int,
                 builtins.float, builtins.bool, builtins.round, builtins.pow, builtins.divmod,
                 builtins.isinstance, builtins.tuple, builtins.list, builtins.sum, builtins.str,
                 builtins.any, builtins.all, builtins.range, builtins.slice, builtins.sorted, builtins.chr,
                 builtins.ord, builtins.format, builtins.repr, builtins.issubclass, builtins.frozenset}
PURE_BUILTINS |= {value for value in vars(math).values() if callable(value)}


# Builtins (and a few library callables) handled over symbolic values, tried first by
# BuiltinVariable.call. The handlers make dicts, partials, super objects...: builtin_calls.py,
# above the kinds it makes, fills this table when it is imported (variables/builder.py imports it).
SPECIAL_CALLS: dict[Any, Callable] = {}


def special_call(fn) -> Callable | None:
    try:
        return SPECIAL_CALLS.get(fn)
    except TypeError:  # unhashable callable
        return None


class BuiltinVariable(VariableTracker):
    """A builtin function (len, abs, math.sqrt...) or a method of an immutable constant."""

    def __init__(self, fn, source=None, pure: bool = False):
        super().__init__(source)
        self.fn = fn
        self.pure = pure or fn in PURE_BUILTINS

    def as_python_constant(self):
        return self.fn

    def call(self, tx, args, kwargs) -> VariableTracker:
        handler = special_call(self.fn)
        if handler is not None:
            result = handler(tx, args, kwargs)
            if result is not None:
                return result
        if self.fn in SEQUENCE_BUILTINS:
            return SEQUENCE_BUILTINS[self.fn](tx, args, kwargs)
        if self.fn is builtins.len and len(args) == 1 and isinstance(args[0], BaseListVariable):
            return _len_of_sequence(tx, args, kwargs)
        if self.fn in (builtins.list, builtins.tuple) and len(args) == 1 and not args[0].is_python_constant():
            return (ListVariable if self.fn is builtins.list else TupleVariable)(args[0].unpack(tx))
        symbolic = SYMBOLIC_BUILTINS.get(self.fn) if not kwargs else None
        if symbolic is not None and len(args) >= symbolic[1] and any(isinstance(arg, SymNodeVariable) for arg in args) \
                and all(map(_is_number_like, args)):
            return _symbolic_fold(tx, symbolic[0], args)
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
        try:
            result = self.fn(*constant_args, **constant_kwargs)
        except Exception as error:  # the user's own error (bad argument...): eager raises it for real
            raise TorchOpError(f"{name}()", error) from error
        return wrap_constant(result)

    def __repr__(self) -> str:
        return f"BuiltinVariable({getattr(self.fn, '__qualname__', self.fn)!r})"


# Builtins over symbolic sizes recorded in the graph, as TorchDynamo records them (others
# specialise their arguments): builtin -> (the graph's function, fewest arguments).
SYMBOLIC_BUILTINS = {builtins.max: (torch.sym_max, 2), builtins.min: (torch.sym_min, 2), builtins.abs: (operator.abs, 1)}


def _is_number_like(value: VariableTracker) -> bool:
    return isinstance(value, SymNodeVariable) or (value.is_python_constant() and
                                                  type(value.as_python_constant()) in (int, float))


def _symbolic_fold(tx, function, args) -> VariableTracker:
    if len(args) == 1:
        return tx.output.call_op("call_function", function, list(args), {})
    result = args[0]
    for arg in args[1:]:
        result = tx.output.call_op("call_function", function, [result, arg], {})
    return result


def _len_of_tensor(tx, args, kwargs):
    if not args[0].example.shape:
        raise Unsupported("len() of a 0-d tensor")
    return args[0].size_of(tx, "size", 0)


def _isinstance_of_tensor(tx, args, kwargs):
    return wrap_constant(isinstance(args[0].example, args[1].as_python_constant()))


def _abs_of_tensor(tx, args, kwargs):
    return tx.output.call_op("call_function", operator.abs, list(args), {})


def _sequence_of(tx, value):
    if isinstance(value, ListVariable):
        value.walked_lazily = True  # eager's enumerate/zip/reversed see later mutations: containers.check_mutable
    return value.unpack(tx)


def _enumerate(tx, args, kwargs):
    start = (args[1] if len(args) > 1 else kwargs.get("start", wrap_constant(0))).as_python_constant()
    return TupleVariable([TupleVariable([wrap_constant(start + index), item])
                          for index, item in enumerate(_sequence_of(tx, args[0]))])


def _zip(tx, args, kwargs):
    if kwargs:
        raise Unsupported("zip() with keyword arguments")
    return TupleVariable([TupleVariable(list(items)) for items in zip(*(_sequence_of(tx, a) for a in args))])


def _reversed(tx, args, kwargs):
    return TupleVariable(list(reversed(_sequence_of(tx, args[0]))))


def _len_of_sequence(tx, args, kwargs):
    return wrap_constant(len(args[0].items))  # inputs' lengths are guarded when wrapped


# Builtins over sequences of symbolic values (items need not be constants).
SEQUENCE_BUILTINS = {builtins.enumerate: _enumerate, builtins.zip: _zip, builtins.reversed: _reversed}


# Builtins that have a meaning on tensors without reading their data.
TENSOR_BUILTINS = {builtins.len: _len_of_tensor, builtins.isinstance: _isinstance_of_tensor,
                   builtins.abs: _abs_of_tensor}


class UserFunctionVariable(VariableTracker):
    """A Python function defined by the user (guarded by identity): calls are inlined."""

    def __init__(self, fn, source=None):
        super().__init__(source)
        self.fn = fn

    def as_python_constant(self):
        return self.fn

    def call(self, tx, args, kwargs) -> VariableTracker:
        decorated = decorated_grad_mode(self.fn)  # @torch.no_grad() & co: inline inside the mode
        if decorated is not None:
            return call_decorated(tx, self, *decorated, list(args), dict(kwargs))
        return tx.inline(self, list(args), dict(kwargs))

    def var_getattr(self, tx, name: str) -> VariableTracker:
        # Function attributes are writable (even __code__): each is read through its own source
        # and guarded by value (strings, tuples) or identity (code objects, functions).
        if self.source is None:
            raise Unsupported(f"attribute {name!r} of a function with no source")
        if name not in FUNCTION_ATTRIBUTES and name not in self.fn.__dict__:
            raise Unsupported(f"function attribute {name!r}")
        try:
            value = getattr(self.fn, name)
        except AttributeError as error:  # e.g. __wrapped__ of an undecorated function: eager raises it
            raise TorchOpError(f"function attribute {name!r}", error) from error
        return tx.wrap(value, AttrSource(self.source, name))

    def has_attribute(self, tx, name: str) -> bool:
        if hasattr(self.fn, name):
            self.var_getattr(tx, name)  # guards the value, so it must still be there
            return True
        if self.source is None:
            raise Unsupported("hasattr on a function with no source")
        tx.output.guards.add(Guard(self.source, "NO_ATTR", name, noun="function"))
        return False

    def __repr__(self) -> str:
        return f"UserFunctionVariable({getattr(self.fn, '__qualname__', self.fn)})"


class ClosureFunctionVariable(UserFunctionVariable):
    """A Python function with a closure, read through a source and guarded by its code and
    globals rather than its identity (TorchDynamo's CLOSURE_MATCH): a frame that makes a
    closure makes a new function object on each call (a decorator's wrapper, a lambda a graph
    break passes to the resume function), all of one code. Calls read the cells, defaults
    and attributes through the source, so the object itself is never a Python constant."""

    def as_python_constant(self):
        raise Unsupported(f"{self!r} is not a Python constant (a closure, guarded by its code)")

    def __repr__(self) -> str:
        return f"ClosureFunctionVariable({getattr(self.fn, '__qualname__', self.fn)})"


def call_decorated(tx, function_variable, mode: bool, inner_fn, args, kwargs) -> VariableTracker:
    """Inline `inner_fn(*args, **kwargs)` inside the decorator's grad mode."""
    if function_variable.source is None or getattr(function_variable.fn, "__wrapped__", None) is not inner_fn:
        raise Unsupported(f"call to {function_variable!r}: a grad-mode decorated function with no source")
    inner = UserFunctionVariable(inner_fn, AttrSource(function_variable.source, "__wrapped__"))
    context = GradModeContextVariable(mode)
    context.enter(tx)
    result = inner.call(tx, args, kwargs)
    context.exit(tx)
    return result


# Function attributes read as guarded values (plus anything in the function's __dict__).
# __globals__ and __closure__ are left out: they are better read through the frame's own sources.
FUNCTION_ATTRIBUTES = frozenset({"__code__", "__name__", "__qualname__", "__module__", "__doc__",
                                 "__defaults__", "__kwdefaults__", "__wrapped__", "__dict__"})

