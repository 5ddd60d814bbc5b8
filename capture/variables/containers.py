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
        make = getattr(self.python_container, "_make", self.python_container)  # namedtuples: _make
        return make(values)  # structseqs (torch.return_types.*) take a sequence too

    def python_type(self) -> type:
        return self.python_container

    def unpack(self, tx) -> list[VariableTracker]:
        return list(self.items)

    def getitem(self, tx, index: VariableTracker) -> VariableTracker:
        key = index.as_python_constant()
        if isinstance(key, slice):
            return (ListVariable if self.python_container is list else TupleVariable)(self.items[key])
        if isinstance(key, int):
            if not -len(self.items) <= key < len(self.items):
                raise TorchOpError(f"{self.python_container.__name__} index", IndexError(key))
            return self.items[key]
        raise Unsupported(f"indexing a {self.python_container.__name__} with {type(key).__name__}")

    def var_getattr(self, tx, name: str) -> VariableTracker:
        fields = getattr(self.python_container, "__match_args__", ())
        if name in fields:  # named fields of torch.return_types structseqs and namedtuples
            return self.items[fields.index(name)]
        from .methods import container_method
        return container_method(tx, self, name, self.python_container)

    def truth(self, tx) -> bool:
        return bool(self.items)

    def length(self, tx) -> int:
        return len(self.items)

    def check_mutable(self, what: str) -> None:
        if self.source is not None:
            raise Unsupported(f"{what} on a {self.python_container.__name__} that came from outside the function "
                              f"({self.source.name()})", hint="mutating inputs is not captured yet; copy it first")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.items!r})"


class TupleVariable(BaseListVariable):
    python_container = tuple


class ListVariable(BaseListVariable):
    python_container = list

    def setitem(self, tx, index: VariableTracker, value: VariableTracker) -> None:
        self.check_mutable("item assignment")
        key = index.as_python_constant()
        try:
            if isinstance(key, slice):
                self.items[key] = value.unpack(tx)
            else:
                self.items[key] = value
        except (IndexError, TypeError, ValueError) as error:  # eager raises it for real
            raise TorchOpError("list item assignment", error) from error

    def delitem(self, tx, index: VariableTracker) -> None:
        self.check_mutable("del")
        try:
            del self.items[index.as_python_constant()]
        except (IndexError, TypeError) as error:
            raise TorchOpError("list del", error) from error


class IteratorVariable(VariableTracker):
    """iter(sequence): the items still to come; FOR_ITER takes them one by one (loops are unrolled)."""

    def __init__(self, items: list[VariableTracker]):
        super().__init__(None)
        self.items = list(items)

    def next_item(self, tx) -> VariableTracker | None:
        return self.items.pop(0) if self.items else None

    def unpack(self, tx) -> list[VariableTracker]:
        items, self.items = self.items, []
        return items

    def truth(self, tx) -> bool:
        return True

    def __repr__(self) -> str:
        return f"IteratorVariable({len(self.items)} items left)"
