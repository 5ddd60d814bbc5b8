"""dict subclasses written in Python (transformers' `_CanRecordRegistry`: a dict with a Python
`get` that calls super().get): read from an input, guarded like a dict on its keys.

Only subclasses that keep dict's reading protocol qualify (no Python __getitem__, __iter__,
keys...): then the items, the KEYS guard and each value's GetItemSource mean what dict's do.
A method the class defines in Python is inlined with the dict as `self`; dict's own methods
(also through super()) act on the items. Writes are refused: replaying them would bypass the
class's own __setitem__ (or call it twice).
"""
from __future__ import annotations

import collections

from ..exc import Unsupported
from ..guards import Guard
from ..sources import AttrSource
from .dicts import ConstDictVariable
from .user_objects import HEAPTYPE, PLAIN_METACLASSES, bind_class_attribute, class_variable_of, find_class_attribute

_DICT_BASES = (dict, collections.OrderedDict)
# What dict's reading protocol is made of: a class that redefines one of these reads differently.
_READERS = frozenset({"__getitem__", "__iter__", "__len__", "__contains__", "keys", "items", "values",
                      "__missing__", "__getattribute__", "__getattr__", "__eq__", "__reversed__"})


def builtin_base(cls: type) -> type | None:
    """dict or OrderedDict when `cls` is a Python subclass of it that keeps its reading
    protocol; else None."""
    if type(cls) not in PLAIN_METACLASSES or cls in _DICT_BASES or not issubclass(cls, dict):
        return None
    for klass in cls.__mro__:
        if klass in _DICT_BASES:
            return klass
        if not klass.__flags__ & HEAPTYPE or klass.__module__.split(".")[0] == "torch" or \
                _READERS.intersection(klass.__dict__):
            return None
    return None


def is_user_dict(value) -> bool:
    return isinstance(value, dict) and builtin_base(type(value)) is not None


def is_dict_object(value) -> bool:
    """An instance of a Python dict subclass that redefines how it is read (transformers'
    ModelOutput: items by name or position): read as a plain object (UserObjectVariable), its
    attributes through its source and its Python methods inlined; dict's own methods graph-break."""
    cls = type(value)
    if not isinstance(value, dict) or cls in _DICT_BASES or builtin_base(cls) is not None:
        return False
    for klass in cls.__mro__:
        if klass in _DICT_BASES:
            return True
        if not klass.__flags__ & HEAPTYPE or klass.__module__.split(".")[0] == "torch" or \
                {"__getattribute__", "__getattr__"}.intersection(klass.__dict__):
            return False
    return False


class UserDictVariable(ConstDictVariable):
    """An instance of a Python dict subclass read through `source` (its keys guarded)."""

    def __init__(self, items: dict, source, user_cls: type, instance):
        super().__init__(items, source, user_cls)
        self.instance = instance                   # the real object: its instance attributes
        self.base = builtin_base(user_cls)
        self.cls_source = AttrSource(source, "__class__")

    def as_python_constant(self):
        raise Unsupported(f"{self!r} is not a Python constant")

    def var_getattr(self, tx, name: str):
        if name == "__class__":
            return class_variable_of(self.user_cls, self.cls_source)
        if name in getattr(self.instance, "__dict__", {}):
            return tx.wrap(self.instance.__dict__[name], AttrSource(self.source, name))
        if hasattr(self.instance, "__dict__"):
            tx.output.guards.add(Guard(AttrSource(self.source, "__dict__"), "NOT_IN", name, noun="object"))
        descriptor, source = find_class_attribute(tx, self.user_cls, self.cls_source, name)  # (guards the MRO)
        owner = next((klass for klass in self.user_cls.__mro__ if name in klass.__dict__), object)
        if owner not in _DICT_BASES and owner is not object:  # defined by the Python class
            return bind_class_attribute(tx, self, class_variable_of(self.user_cls, self.cls_source), name,
                                        descriptor, source)
        return tx.container_method(self, name, self.base)

    def check_mutable(self, tx, what: str) -> None:
        raise Unsupported(f"{what} on a {self.user_cls.__qualname__} (a dict subclass) from outside the function")

    def copy(self, tx, user_cls: type | None = None) -> ConstDictVariable:
        return super().copy(tx, user_cls or dict)  # dict.copy() and {**d} make plain dicts

    def __repr__(self) -> str:
        return f"UserDictVariable({self.user_cls.__qualname__}, {self.source.name()})"
