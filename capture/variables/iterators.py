"""Lazy iterators: generators (generator expressions and user generator functions) and map().

A generator is a suspended child translator: each `next_item` runs its code until the next
YIELD_VALUE, so the consumer and the generator interleave exactly as they do eagerly (an
`any(...)` that stops early leaves the rest of the generator unrun).
"""
from __future__ import annotations

import types

from ..exc import Unsupported
from .base import VariableTracker
from .containers import IteratorVariable, ListIteratorVariable, ListVariable


class Yielded(Exception):
    """Raised by YIELD_VALUE out of a generator's translator, which stays suspended."""

    def __init__(self, value: VariableTracker):
        self.value = value


class GeneratorVariable(VariableTracker):
    def __init__(self, translator):
        super().__init__(None)
        self.translator = translator
        self.finished = False

    def python_type(self) -> type:
        return types.GeneratorType

    def truth(self, tx) -> bool:
        return True

    def next_item(self, tx) -> VariableTracker | None:
        """The next yielded value, or None once the generator returns."""
        if self.finished:
            return None
        try:
            self.translator.run()
        except Yielded as yielded:
            tx.output.location = tx._stack_trace(tx.current)
            return yielded.value
        self.finished = True
        tx.output.location = tx._stack_trace(tx.current)
        return None

    def unpack(self, tx) -> list[VariableTracker]:
        items = []
        while (item := self.next_item(tx)) is not None:
            items.append(item)
        return items

    def __repr__(self) -> str:
        return f"GeneratorVariable({self.translator.code.co_qualname})"


class MapVariable(VariableTracker):
    """map(fn, *iterables), lazily."""

    def __init__(self, fn: VariableTracker, iterators: list):
        super().__init__(None)
        self.fn, self.iterators = fn, iterators

    def python_type(self) -> type:
        return map

    def truth(self, tx) -> bool:
        return True

    def next_item(self, tx) -> VariableTracker | None:
        args = []
        for iterator in self.iterators:
            item = iterator.next_item(tx)
            if item is None:
                return None
            args.append(item)
        return self.fn.call(tx, args, {})

    def unpack(self, tx) -> list[VariableTracker]:
        items = []
        while (item := self.next_item(tx)) is not None:
            items.append(item)
        return items

    def __repr__(self) -> str:
        return f"MapVariable({self.fn!r})"


def get_iter(tx, value: VariableTracker) -> VariableTracker:
    """iter(value): lazy iterators are their own iterator; anything else is unpacked now."""
    if hasattr(value, "next_item"):
        return value
    if isinstance(value, ListVariable):  # live, like CPython's: a loop that appends sees the new items
        return ListIteratorVariable(value)
    if isinstance(value, VariableTracker):
        return IteratorVariable(value.unpack(tx))
    raise Unsupported(f"iterating over {value!r}")
