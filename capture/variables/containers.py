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

    # Mutations live in list_methods.py (they record side effects for lists from outside).
    def var_getattr(self, tx, name: str) -> VariableTracker:
        from .list_methods import LIST_METHODS, ListMethodVariable
        if name in LIST_METHODS:
            return ListMethodVariable(self, name)
        return super().var_getattr(tx, name)

    def setitem(self, tx, index, value) -> None:
        from .list_methods import setitem
        setitem(tx, self, index, value)

    def delitem(self, tx, index) -> None:
        from .list_methods import delitem
        delitem(tx, self, index)


class IteratorVariable(VariableTracker):
    """iter(sequence): the items still to come; FOR_ITER takes them one by one (loops are unrolled)."""

    def __init__(self, items: list[VariableTracker]):
        super().__init__(None)
        self.items = list(items)

    def next_item(self) -> VariableTracker | None:
        return self.items.pop(0) if self.items else None

    def __repr__(self) -> str:
        return f"IteratorVariable({len(self.items)} items left)"


class ListIteratorVariable(IteratorVariable):
    """iter(list): reads the list as it is at each step, like CPython's list iterator, so a
    loop that appends to the list it walks sees the new items."""

    def __init__(self, lst: ListVariable):
        super().__init__([])
        self.lst, self.index = lst, 0

    def next_item(self) -> VariableTracker | None:
        if self.index >= len(self.lst.items):
            return None
        self.index += 1
        return self.lst.items[self.index - 1]

    def __repr__(self) -> str:
        return f"ListIteratorVariable(at {self.index} of {len(self.lst.items)})"
