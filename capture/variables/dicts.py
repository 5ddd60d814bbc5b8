"""Dicts, their key/value/item views, and sets of constants.

Keys are always Python constants (str, int, dtype, a class...): the dict is a real Python dict
from those keys to symbolic values, so key equality and ordering are Python's own. A dict read
from an input fetches its values lazily (each through its own GetItemSource) and is guarded on
its keys, in order.
"""
from __future__ import annotations

from typing import Any

from ..exc import TorchOpError, Unsupported
from ..plans import FromSource, RebuildDict, ReplaceDict
from ..guards import Guard
from ..sources import DictStorageSource, GetItemSource
from .base import VariableTracker
from .constant import is_constant_value
from .containers import TupleVariable


class _Unread:
    """A value of an input dict not yet read: wrapped (and guarded) on first use."""
    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


def constant_key(key: VariableTracker) -> Any:
    """The Python key for a symbolic key: constants (and tuples of them) and classes only."""
    try:
        value = key.as_python_constant()
        hash(value)
    except (Unsupported, TypeError):
        raise Unsupported(f"dict key or set item {key!r} is not a hashable Python constant") from None
    if not is_key_value(value):
        raise Unsupported(f"dict key or set item of type {type(value).__name__}")
    return value


def is_key_value(value: Any) -> bool:
    if type(value) is tuple:
        return all(is_key_value(item) for item in value)
    return is_constant_value(value) or isinstance(value, type)


def is_source_key(value: Any) -> bool:
    """Keys that spell themselves in a source expression (L['d'][key]) and compare by value."""
    if type(value) is tuple:
        return all(is_source_key(item) for item in value)
    return type(value) in (str, int, bool, type(None))


def key_variable(tx, key: Any) -> VariableTracker:
    if type(key) is tuple:
        return TupleVariable([key_variable(tx, item) for item in key])
    return tx.build(key)  # a constant or a class (made above this module: variables/builder.py)


class ConstDictVariable(VariableTracker):
    """A dict (or OrderedDict) with constant keys. `source` set: an input (read-only here)."""

    def __init__(self, items: dict, source=None, user_cls: type = dict):
        super().__init__(source)
        self.items = items          # key -> VariableTracker (or _Unread for inputs)
        self.user_cls = user_cls

    # -- reading --
    def value_of(self, tx, key) -> VariableTracker:
        value = self.items[key]
        if isinstance(value, _Unread):
            value = self.items[key] = tx.wrap(value.value, GetItemSource(self.source, key))
        return value

    def values_list(self, tx) -> list[VariableTracker]:
        return [self.value_of(tx, key) for key in self.items]

    def as_python_constant(self) -> Any:
        values = {}
        for key, value in self.items.items():
            if isinstance(value, _Unread):
                raise Unsupported(f"{self!r} is not a Python constant")
            values[key] = value.as_python_constant()
        return self.user_cls(values)

    def python_type(self) -> type:
        return self.user_cls

    def truth(self, tx) -> bool:
        return bool(self.items)

    def length(self, tx) -> int:
        return len(self.items)

    def contains(self, tx, item: VariableTracker) -> bool:
        return constant_key(item) in self.items

    def getitem(self, tx, index: VariableTracker) -> VariableTracker:
        key = constant_key(index)
        if key not in self.items:
            raise TorchOpError("dict lookup", KeyError(key))  # eager raises the real KeyError
        return self.value_of(tx, key)

    def unpack(self, tx) -> list[VariableTracker]:
        return [key_variable(tx, key) for key in self.items]

    def var_getattr(self, tx, name: str) -> VariableTracker:
        return tx.container_method(self, name, self.user_cls)

    # -- writing: a dict from outside is recorded in the side-effects table (its final items
    # are written back after the graph, capture/side_effects.py) --
    def check_mutable(self, tx, what: str) -> None:
        tx.output.side_effects.mutate_container(self)

    def replayed_items(self) -> list[VariableTracker]:
        return [value for value in self.items.values() if not isinstance(value, _Unread)]

    def write_back(self, plan_value):
        values = tuple(FromSource(GetItemSource(self.source, key)) if isinstance(value, _Unread) else plan_value(value)
                       for key, value in self.items.items())  # an unread value: the object there at call start
        return ReplaceDict(self.source, RebuildDict(dict, tuple(self.items), values))

    def setitem(self, tx, index: VariableTracker, value: VariableTracker) -> None:
        self.check_mutable(tx, "item assignment")
        self.items[constant_key(index)] = value

    def delitem(self, tx, index: VariableTracker) -> None:
        self.check_mutable(tx, "del")
        key = constant_key(index)
        if key not in self.items:
            raise TorchOpError("del on a dict", KeyError(key))
        del self.items[key]

    def update_from(self, tx, other: VariableTracker, merge: bool = False) -> None:
        """`{**other}` / `dict.update(other)`; merge=True is `f(**a, **b)` (duplicate keys raise)."""
        self.check_mutable(tx, "update")
        for key, value in pairs_of(tx, other):
            if merge and key in self.items:
                raise TorchOpError("**kwargs merge", TypeError(f"got multiple values for keyword argument {key!r}"))
            self.items[key] = value

    def copy(self, tx, user_cls: type | None = None) -> "ConstDictVariable":
        """A new dict built inside the function with the same items (input values are read)."""
        return ConstDictVariable({key: self.value_of(tx, key) for key in self.items}, None, user_cls or self.user_cls)

    def __repr__(self) -> str:
        return f"ConstDictVariable({list(self.items)!r})"


class DictStorageVariable(ConstDictVariable):
    """What dict's own methods see of a dict subclass instance read through `source` whose class
    redefines how it is read (transformers' ModelOutput): its items as dict holds them, guarded on
    their keys (dict.keys(obj)) and read through dict.__getitem__(obj, key). Read-only here."""

    @staticmethod
    def of(tx, value: dict, source) -> "DictStorageVariable":
        keys = tuple(dict.keys(value))
        if not all(is_source_key(key) for key in keys):
            raise Unsupported(f"dict {source.name()} with keys other than str, int, bool or None")
        tx.output.guards.add(Guard(DictStorageSource(source), "KEYS", keys, noun="dict"))
        return DictStorageVariable({key: _Unread(dict.__getitem__(value, key)) for key in keys}, source,
                                   type(value))

    def value_of(self, tx, key) -> VariableTracker:
        value = self.items[key]
        if isinstance(value, _Unread):
            value = self.items[key] = tx.wrap(value.value, DictStorageSource(self.source, key, keys=False))
        return value

    def as_python_constant(self) -> Any:
        raise Unsupported(f"{self!r} is not a Python constant")

    def check_mutable(self, tx, what: str) -> None:
        raise Unsupported(f"{what} on a {self.user_cls.__qualname__} (a dict subclass) from outside the function")

    def copy(self, tx, user_cls: type | None = None) -> ConstDictVariable:
        return super().copy(tx, user_cls or dict)  # dict.copy() makes a plain dict

    def __repr__(self) -> str:
        return f"DictStorageVariable({self.user_cls.__qualname__}, {self.source.name()})"


def pairs_of(tx, other: VariableTracker) -> list[tuple[Any, VariableTracker]]:
    """(key, value) pairs of a mapping, or of an iterable of pairs, as dict() reads them."""
    if isinstance(other, ConstDictVariable):
        return [(key, other.value_of(tx, key)) for key in other.items]
    pairs = []
    for pair in other.unpack(tx):
        items = pair.unpack(tx)
        if len(items) != 2:
            raise TorchOpError("dict()", ValueError("dictionary update sequence element has wrong length"))
        pairs.append((constant_key(items[0]), items[1]))
    return pairs


class DictViewVariable(VariableTracker):
    """d.keys() / d.values() / d.items(): iterable, sized, and for keys, `in`."""

    def __init__(self, mapping: ConstDictVariable, kind: str):
        super().__init__(None)
        self.mapping, self.kind = mapping, kind

    def unpack(self, tx) -> list[VariableTracker]:
        keys = self.mapping.unpack(tx)
        if self.kind == "keys":
            return keys
        values = self.mapping.values_list(tx)
        if self.kind == "values":
            return values
        return [TupleVariable([key, value]) for key, value in zip(keys, values)]

    def length(self, tx) -> int:
        return len(self.mapping.items)

    def truth(self, tx) -> bool:
        return bool(self.mapping.items)

    def contains(self, tx, item: VariableTracker) -> bool:
        if self.kind == "keys":
            return self.mapping.contains(tx, item)
        raise Unsupported(f"`in` on dict {self.kind}()")

    def as_python_constant(self) -> Any:
        if self.kind == "keys":  # a real keys view, for set operations (d.keys() & {...})
            return dict.fromkeys(self.mapping.items).keys()
        return getattr(self.mapping.as_python_constant(), self.kind)()

    def python_type(self) -> type:
        return type(getattr({}, self.kind)())

    def __repr__(self) -> str:
        return f"DictViewVariable({self.kind} of {self.mapping!r})"


class SetVariable(VariableTracker):
    """A set of Python constants, held as a real set (so iteration order is Python's own)."""

    def __init__(self, items: set, source=None):
        super().__init__(source)
        self.items = items

    @staticmethod
    def from_variables(variables: list[VariableTracker]) -> "SetVariable":
        result = set()
        for item in variables:  # in order: a set's iteration order depends on insertion order
            result.add(constant_key(item))
        return SetVariable(result)

    def as_python_constant(self) -> Any:
        return self.items  # the real set: operations on it are eager's own, iteration order included

    def python_type(self) -> type:
        return set

    def truth(self, tx) -> bool:
        return bool(self.items)

    def length(self, tx) -> int:
        return len(self.items)

    def contains(self, tx, item: VariableTracker) -> bool:
        return constant_key(item) in self.items

    def unpack(self, tx) -> list[VariableTracker]:
        return [key_variable(tx, item) for item in self.items]

    def var_getattr(self, tx, name: str) -> VariableTracker:
        return tx.container_method(self, name, set)

    def check_mutable(self, tx, what: str) -> None:
        if self.source is not None:  # a replayed set could iterate in another order than eager's
            raise Unsupported(f"{what} on a set that came from outside the function ({self.source.name()})",
                              hint="copy the set first (set(s)) and return the copy")

    def __repr__(self) -> str:
        return f"SetVariable({self.items!r})"
