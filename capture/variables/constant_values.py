"""Variables for Python values computed from constants (folded operators and builtins, attributes
of constants): scalars are ConstantVariables, tuples, lists, dicts and sets of them containers."""
from __future__ import annotations

from typing import Any

import torch

from ..exc import Unsupported
from .base import VariableTracker
from .constant import ConstantVariable, is_constant_value
from .containers import ListVariable, TupleVariable
from .dicts import ConstDictVariable, SetVariable

_SCALAR_TYPES = frozenset({int, float, bool, str, type(None)})


def wrap_constant(value: Any) -> VariableTracker:
    """A variable for a Python value computed from constants (tuples become TupleVariables)."""
    if type(value) in _SCALAR_TYPES:  # the common case first
        return ConstantVariable(value)
    if isinstance(value, tuple) and not isinstance(value, torch.Size):
        return TupleVariable([wrap_constant(item) for item in value], python_container=type(value))
    if type(value) is list:
        return ListVariable([wrap_constant(item) for item in value])
    if type(value) in (dict, set):
        if type(value) is set:
            return SetVariable(value)
        return ConstDictVariable({key: wrap_constant(item) for key, item in value.items()})
    if not is_constant_value(value):
        raise Unsupported(f"constant computation produced a {type(value).__name__}")
    return ConstantVariable(value)
