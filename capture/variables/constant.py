"""Python constants: numbers, strings, None, dtypes, devices, sizes, slices."""
from __future__ import annotations

import enum
import operator
from typing import Any

import torch

from ..exc import TorchOpError
from .base import VariableTracker

CONSTANT_TYPES = (int, float, bool, str, bytes, complex, type(None), type(Ellipsis), slice, range,
                  frozenset, torch.dtype, torch.device, torch.Size, torch.layout, torch.memory_format)


def is_constant_value(value: Any) -> bool:
    if isinstance(value, slice):
        return all(is_constant_value(part) for part in (value.start, value.stop, value.step))
    if isinstance(value, torch.Size):
        return True
    if type(value) is frozenset:
        return all(is_constant_value(item) for item in value)
    if isinstance(value, enum.Enum):  # members are singletons; their value is fixed
        return is_constant_value(value.value)
    return type(value) in CONSTANT_TYPES


class ConstantVariable(VariableTracker):
    def __init__(self, value: Any, source=None):
        super().__init__(source)
        assert is_constant_value(value), f"not a constant: {value!r}"
        self.value = value

    def as_python_constant(self) -> Any:
        return self.value

    def python_type(self) -> type:
        return type(self.value)

    def var_getattr(self, tx, name: str) -> VariableTracker:
        # Constants are immutable, so reading an attribute (or calling a method) is pure. Values
        # computed from constants are made above this module (variables/builder.py): tx builds them.
        return tx.constant_attribute(getattr(self.value, name))

    def getitem(self, tx, index: VariableTracker) -> VariableTracker:
        try:
            item = self.value[index.as_python_constant()]
        except (IndexError, KeyError, TypeError) as error:  # eager will raise it for real
            raise TorchOpError(f"indexing {self.value!r}", error) from error
        return tx.build(item)

    def unpack(self, tx) -> list[VariableTracker]:
        if isinstance(self.value, (tuple, str, bytes, range, frozenset)):
            return [tx.build(item) for item in self.value]
        return super().unpack(tx)

    def __repr__(self) -> str:
        return f"ConstantVariable({self.value!r})"


UNARY_OPERATORS = {"UNARY_NEGATIVE": operator.neg, "UNARY_INVERT": operator.invert,
                   "UNARY_POSITIVE": operator.pos, "UNARY_NOT": operator.not_}
