"""Tuples and lists of symbolic values."""
from __future__ import annotations

from typing import Any

from ..exc import TorchOpError, Unsupported
from .base import VariableTracker


class BaseListVariable(VariableTracker):
    python_container: type = tuple

    def __init__(self, items: list[VariableTracker], source=None, python_container: type | None = None):
        super().__init__(source)
        self.items = list(items)
        if python_container is not None:
            self.python_container = python_container

    def as_python_constant(self) -> Any:
        return self.rebuild([item.as_python_constant() for item in self.items])

    def rebuild(self, values: list) -> Any:
        """Make the Python container holding `values`, the same type as traced."""
        return self.python_container(values)  # structseqs (torch.return_types.*) take a sequence too

    def python_type(self) -> type:
        return self.python_container

    def unpack(self, tx) -> list[VariableTracker]:
        return list(self.items)

    def getitem(self, tx, index: VariableTracker) -> VariableTracker:
        key = index.as_python_constant()
        if isinstance(key, slice):
            return type(self)(self.items[key], python_container=self._sliced_container())
        if isinstance(key, int):
            if not -len(self.items) <= key < len(self.items):
                raise TorchOpError(f"{self.python_container.__name__} index", IndexError(key))
            return self.items[key]
        raise Unsupported(f"indexing a {self.python_container.__name__} with {type(key).__name__}")

    def _sliced_container(self) -> type:
        return self.python_container if self.python_container in (tuple, list) else tuple

    def var_getattr(self, tx, name: str) -> VariableTracker:
        fields = getattr(self.python_container, "__match_args__", ())
        if name in fields:  # named fields of torch.return_types structseqs
            return self.items[fields.index(name)]
        return super().var_getattr(tx, name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.items!r})"


class TupleVariable(BaseListVariable):
    python_container = tuple


class ListVariable(BaseListVariable):
    python_container = list


class IteratorVariable(VariableTracker):
    """iter(sequence): the items still to come; FOR_ITER takes them one by one (loops are unrolled)."""

    def __init__(self, items: list[VariableTracker]):
        super().__init__(None)
        self.items = list(items)

    def __repr__(self) -> str:
        return f"IteratorVariable({len(self.items)} items left)"
