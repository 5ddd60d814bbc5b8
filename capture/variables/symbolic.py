"""Symbolic sizes and ints (SymInt, SymFloat, SymBool): an fx node plus the ShapeEnv value.

Arithmetic on them is recorded in the graph (output_graph.call_op); a use that needs a concrete
Python value (a branch, `range(n)`, a slice bound) specialises it: `bool()`/`int()` on the value
makes the ShapeEnv record a guard, as TorchDynamo does.
"""
from __future__ import annotations

import torch
import torch.fx
from torch.fx.experimental.symbolic_shapes import guard_bool, guard_float, guard_int

from .base import VariableTracker
from .constant_values import wrap_constant
from .containers import BaseListVariable

SYM_TYPES = (torch.SymInt, torch.SymFloat, torch.SymBool)
_PYTHON_TYPES = {torch.SymInt: int, torch.SymFloat: float, torch.SymBool: bool}
_SPECIALISE = {torch.SymInt: guard_int, torch.SymFloat: guard_float, torch.SymBool: guard_bool}


def constant_value(value):
    """The plain Python value of a symbolic value that is a number (`s0 - s0`), else None."""
    if not isinstance(value, SYM_TYPES):
        return value
    expr = value.node.expr
    if getattr(expr, "is_number", False) or expr in (True, False):
        return _PYTHON_TYPES[type(value)](expr)
    return None


class SymNodeVariable(VariableTracker):
    """A symbolic scalar computed in the graph (or a SymInt graph input)."""

    def __init__(self, node: torch.fx.Node, value, source=None):
        super().__init__(source)
        self.node, self.value = node, value

    def python_type(self) -> type:
        return _PYTHON_TYPES[type(self.value)]

    def is_python_constant(self) -> bool:
        return True  # as_python_constant() specialises (with a guard) when a use needs a value

    def as_python_constant(self):
        return _SPECIALISE[type(self.value)](self.value)

    def truth(self, tx) -> bool:
        return guard_bool(self.value != 0) if not isinstance(self.value, torch.SymBool) else guard_bool(self.value)

    def var_getattr(self, tx, name: str) -> VariableTracker:
        return tx.constant_attribute(getattr(self.as_python_constant(), name))

    def __repr__(self) -> str:
        return f"SymNodeVariable({self.node.name}: {self.value})"


class SliceVariable(VariableTracker):
    """A slice with a symbolic bound (`x[:, :n]`): kept symbolic as a tensor index, specialised
    anywhere else (a list's slice)."""

    def __init__(self, parts: list[VariableTracker]):
        super().__init__(None)
        self.parts = parts

    def is_python_constant(self) -> bool:
        return True

    def as_python_constant(self) -> slice:
        return slice(*(part.as_python_constant() for part in self.parts))

    def graph_arg(self) -> tuple[slice, slice]:
        """The slice for the fx node (nodes for symbolic bounds) and for the fake run."""
        nodes = [part.node if isinstance(part, SymNodeVariable) else part.as_python_constant() for part in self.parts]
        values = [part.value if isinstance(part, SymNodeVariable) else part.as_python_constant() for part in self.parts]
        return slice(*nodes), slice(*values)

    def __repr__(self) -> str:
        return f"SliceVariable({self.parts})"


def has_symbols(value: VariableTracker) -> bool:
    """A symbolic scalar or slice, or a tuple/list holding one."""
    if isinstance(value, BaseListVariable):
        return any(map(has_symbols, value.items))
    return isinstance(value, (SymNodeVariable, SliceVariable))


def sequences_equal(left: BaseListVariable, right: BaseListVariable) -> bool:
    """`left == right` for tuples holding sizes (`x.shape == y.shape`): guarded item by item as
    relations between the symbols (`Eq(s0, s1)`), not by specialising each size to its value."""
    if len(left.items) != len(right.items) or (left.python_container is list) != (right.python_container is list):
        return False
    for a, b in zip(left.items, right.items):
        same = _value(a) == _value(b)
        if not (guard_bool(same) if isinstance(same, torch.SymBool) else same):
            return False
    return True


def _value(variable: VariableTracker):
    return variable.value if isinstance(variable, SymNodeVariable) else variable.as_python_constant()


def sym_or_constant(node_for, value) -> VariableTracker:
    """A variable for a size-like value: a constant when it is one, else a SymNodeVariable on the
    node `node_for()` gives (called only then)."""
    constant = constant_value(value)
    if constant is not None:
        return wrap_constant(constant)
    return SymNodeVariable(node_for(), value)
