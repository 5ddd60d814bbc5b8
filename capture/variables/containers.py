"""Tuples and lists of symbolic values."""
from __future__ import annotations

from typing import Any

from ..exc import TorchOpError, Unsupported
from ..plans import Rebuild, ReplaceContents
from .base import VariableTracker


class BaseListVariable(VariableTracker):
    python_container: type = tuple

    def __init__(self, items: list[VariableTracker], source=None, python_container: type | None = None):
        super().__init__(source)
        self.items = list(items)
        if python_container is not None:
            self.python_container = python_container

    def is_python_constant(self) -> bool:  # (asking must not specialise a symbolic size inside)
        return all(item.is_python_constant() for item in self.items)

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
        return tx.container_method(self, name, self.python_container)

    def truth(self, tx) -> bool:
        return bool(self.items)

    def length(self, tx) -> int:
        return len(self.items)

    def check_mutable(self, tx, what: str) -> None:
        """Called before the items change. A list from outside is recorded in the side-effects
        table: its final contents are written back after the graph runs."""
        if getattr(self, "walked_lazily", False):  # the unrolled loop walked a snapshot; eager walks the list
            raise Unsupported(f"{what} on {self!r}, a list enumerate()/zip()/reversed() iterates over",
                              hint="iterate over a copy (list(xs)) or mutate it after the loop")
        tx.output.side_effects.mutate_container(self)

    # -- replay of a list from outside (capture/side_effects.py) --
    def replayed_items(self) -> list[VariableTracker]:
        return list(self.items)

    def write_back(self, plan_value):
        return ReplaceContents(self.source, Rebuild(list, tuple(plan_value(item) for item in self.items)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.items!r})"


class TupleVariable(BaseListVariable):
    python_container = tuple


class ListVariable(BaseListVariable):
    python_container = list

    def setitem(self, tx, index: VariableTracker, value: VariableTracker) -> None:
        self.check_mutable(tx, "item assignment")
        key = index.as_python_constant()
        try:
            if isinstance(key, slice):
                self.items[key] = value.unpack(tx)
            else:
                self.items[key] = value
        except (IndexError, TypeError, ValueError) as error:  # eager raises it for real
            raise TorchOpError("list item assignment", error) from error

    def delitem(self, tx, index: VariableTracker) -> None:
        self.check_mutable(tx, "del")
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


class ListIteratorVariable(IteratorVariable):
    """iter(list): reads the list as it is at each step, like CPython's list iterator, so a
    loop that appends to the list it walks sees the new items."""

    def __init__(self, lst: ListVariable):
        super().__init__([])
        self.lst, self.index = lst, 0

    def next_item(self, tx) -> VariableTracker | None:
        if self.index >= len(self.lst.items):
            return None
        self.index += 1
        return self.lst.items[self.index - 1]

    def unpack(self, tx) -> list[VariableTracker]:
        items = self.lst.items[self.index:]
        self.index = len(self.lst.items)
        return items

    def __repr__(self) -> str:
        return f"ListIteratorVariable(at {self.index} of {len(self.lst.items)})"
