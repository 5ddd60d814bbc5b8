"""Methods of lists, tuples, dicts and sets, one table per container kind.

Mutating methods work on containers built inside the traced function; on an input they are
Unsupported (the container's `check_mutable` says so). Methods that compare items (`index`,
`count`, `remove`) need constants or the very same symbolic value: comparing tensors with ==
would read their data.
"""
from __future__ import annotations

from typing import Callable

from ..exc import TorchOpError, Unsupported
from .base import VariableTracker
from .constant_values import wrap_constant
from .containers import BaseListVariable, ListVariable
from .dicts import ConstDictVariable, DictViewVariable, constant_key
from .tensor import TensorVariable
from .user_objects import NamedTupleVariable, namedtuple_class_attribute


class ContainerMethodVariable(VariableTracker):
    """`container.name`, bound, waiting to be called."""

    def __init__(self, owner: VariableTracker, name: str, impl: Callable):
        super().__init__(None)
        self.owner, self.name, self.impl = owner, name, impl

    def call(self, tx, args, kwargs) -> VariableTracker:
        return self.impl(tx, self.owner, *args, **kwargs)

    def __repr__(self) -> str:
        return f"ContainerMethodVariable({self.owner!r}.{self.name})"


def same_value(left: VariableTracker, right: VariableTracker) -> bool:
    """`left == right` as Python's containers test it (identity first), without reading tensors."""
    if left is right:
        return True
    if isinstance(left, TensorVariable) and isinstance(right, TensorVariable) and left.node is right.node:
        return True
    if left.is_python_constant() and right.is_python_constant():
        return left.as_python_constant() == right.as_python_constant()
    raise Unsupported(f"comparing {left!r} with {right!r} (would compare tensors by value)")


def _none():
    return wrap_constant(None)


# -- lists and tuples ------------------------------------------------------------------------

def _append(tx, lst, item):
    lst.check_mutable(tx, "append")
    lst.items.append(item)
    return _none()


def _extend(tx, lst, iterable):
    lst.check_mutable(tx, "extend")
    lst.items.extend(iterable.unpack(tx))
    return _none()


def _insert(tx, lst, index, item):
    lst.check_mutable(tx, "insert")
    lst.items.insert(index.as_python_constant(), item)
    return _none()


def _pop(tx, lst, index=None):
    lst.check_mutable(tx, "pop")
    position = -1 if index is None else index.as_python_constant()
    try:
        return lst.items.pop(position)
    except IndexError as error:
        raise TorchOpError("list.pop", error) from error


def _index_of(lst, item, what: str) -> int:
    for position, candidate in enumerate(lst.items):
        if same_value(candidate, item):
            return position
    raise TorchOpError(what, ValueError("item not in list"))


def _remove(tx, lst, item):
    lst.check_mutable(tx, "remove")
    del lst.items[_index_of(lst, item, "list.remove")]
    return _none()


def _index(tx, seq, item):
    return wrap_constant(_index_of(seq, item, f"{seq.python_container.__name__}.index"))


def _count(tx, seq, item):
    return wrap_constant(sum(same_value(candidate, item) for candidate in seq.items))


def _reverse(tx, lst):
    lst.check_mutable(tx, "reverse")
    lst.items.reverse()
    return _none()


def _clear(tx, container):
    container.check_mutable(tx, "clear")
    container.items.clear()
    return _none()


def _list_copy(tx, lst):
    return ListVariable(list(lst.items))


def less_than(left: VariableTracker, right: VariableTracker) -> bool:
    """`left < right` as sorting asks it: constants compare; tuples/lists compare item by item,
    deciding at the first pair that differs (so a tensor in a later position is never read)."""
    if left.is_python_constant() and right.is_python_constant():
        try:
            return left.as_python_constant() < right.as_python_constant()
        except TypeError as error:
            raise TorchOpError("comparison", error) from error
    if isinstance(left, BaseListVariable) and isinstance(right, BaseListVariable):
        for a, b in zip(left.items, right.items):
            if not same_value(a, b):
                return less_than(a, b)
        return len(left.items) < len(right.items)
    raise Unsupported(f"ordering {left!r} and {right!r}: not Python constants (would compare tensors)")


class _SortKey:
    __slots__ = ("value",)

    def __init__(self, value: VariableTracker):
        self.value = value

    def __lt__(self, other: "_SortKey") -> bool:
        return less_than(self.value, other.value)


def sort_keys(tx, items: list[VariableTracker], key) -> list:
    """One comparable key per item (calling the user's key function, as sorted() does)."""
    if key is None or (key.is_python_constant() and key.as_python_constant() is None):
        keys = items
    else:
        keys = [key.call(tx, [item], {}) for item in items]
    return [_SortKey(k) for k in keys]


def sorted_items(tx, items: list[VariableTracker], key=None, reverse=None) -> list[VariableTracker]:
    keys = sort_keys(tx, items, key)
    descending = bool(reverse.as_python_constant()) if reverse is not None else False
    order = sorted(range(len(items)), key=lambda position: keys[position], reverse=descending)
    return [items[position] for position in order]


def _sort(tx, lst, key=None, reverse=None):
    lst.check_mutable(tx, "sort")
    lst.items[:] = sorted_items(tx, lst.items, key, reverse)
    return _none()


LIST_METHODS = {"append": _append, "extend": _extend, "insert": _insert, "pop": _pop, "remove": _remove,
                "index": _index, "count": _count, "reverse": _reverse, "clear": _clear, "copy": _list_copy,
                "sort": _sort}
TUPLE_METHODS = {"index": _index, "count": _count}


# -- namedtuples -----------------------------------------------------------------------------

def _asdict(tx, nt):
    return ConstDictVariable(dict(zip(nt.python_container._fields, nt.items)))


def _replace(tx, nt, **changes):
    fields = nt.python_container._fields
    unknown = set(changes) - set(fields)
    if unknown:
        raise TorchOpError("_replace()", ValueError(f"Got unexpected field names: {sorted(unknown)!r}"))
    items = [changes.get(name, item) for name, item in zip(fields, nt.items)]
    return NamedTupleVariable(items, python_container=nt.python_container, cls_source=getattr(nt, "cls_source", None))


NAMEDTUPLE_METHODS = {**TUPLE_METHODS, "_asdict": _asdict, "_replace": _replace}


# -- dicts -----------------------------------------------------------------------------------

def _get(tx, d, key, default=None):
    if constant_key(key) in d.items:
        return d.getitem(tx, key)
    return default if default is not None else _none()


def _view(kind: str):
    def view(tx, d):
        return DictViewVariable(d, kind)
    return view


def _dict_copy(tx, d):
    return d.copy(tx)


def _update(tx, d, other=None, **kwargs):
    if other is not None:
        d.update_from(tx, other)
    if kwargs:
        d.update_from(tx, ConstDictVariable(dict(kwargs)))
    return _none()


def _dict_pop(tx, d, key, default=None):
    d.check_mutable(tx, "pop")
    python_key = constant_key(key)
    if python_key not in d.items:
        if default is None:
            raise TorchOpError("dict.pop", KeyError(python_key))
        return default
    value = d.value_of(tx, python_key)
    del d.items[python_key]
    return value


def _setdefault(tx, d, key, default=None):
    python_key = constant_key(key)
    if python_key not in d.items:
        d.setitem(tx, key, default if default is not None else _none())
    return d.value_of(tx, python_key)


def _dict_setitem(tx, d, key, value):
    d.setitem(tx, key, value)
    return _none()


DICT_METHODS = {"get": _get, "keys": _view("keys"), "values": _view("values"), "items": _view("items"),
                "copy": _dict_copy, "update": _update, "pop": _dict_pop, "setdefault": _setdefault,
                "clear": _clear,
                # what super().__getitem__(k) & co in a dict subclass's methods reach
                "__getitem__": lambda tx, d, key: d.getitem(tx, key), "__setitem__": _dict_setitem,
                "__contains__": lambda tx, d, key: wrap_constant(d.contains(tx, key)),
                "__len__": lambda tx, d: wrap_constant(d.length(tx))}


# -- sets ------------------------------------------------------------------------------------

def _set_query(name: str):
    def query(tx, s, *args):
        operands = [set(constant_key(item) for item in arg.unpack(tx)) for arg in args]
        return wrap_constant(getattr(set(s.items), name)(*operands))
    return query


def _set_add_like(name: str):
    def mutate(tx, s, item):
        s.check_mutable(tx, name)
        try:
            getattr(s.items, name)(constant_key(item))
        except KeyError as error:
            raise TorchOpError(f"set.{name}", error) from error
        return _none()
    return mutate


def _set_update(tx, s, *iterables):
    s.check_mutable(tx, "update")
    for iterable in iterables:
        for item in iterable.unpack(tx):
            s.items.add(constant_key(item))
    return _none()


SET_METHODS = {"add": _set_add_like("add"), "discard": _set_add_like("discard"), "remove": _set_add_like("remove"),
               "update": _set_update, "clear": _clear,
               **{name: _set_query(name) for name in ("union", "intersection", "difference", "symmetric_difference",
                                                      "issubset", "issuperset", "isdisjoint", "copy")}}


def container_method(tx, owner: VariableTracker, name: str, python_type: type) -> VariableTracker:
    """The bound method `owner.name`, for owner a list/tuple/namedtuple/dict/set variable."""
    if hasattr(python_type, "_fields"):
        table = NAMEDTUPLE_METHODS
        if name not in table:
            return namedtuple_class_attribute(tx, owner, name)
    elif issubclass(python_type, list):
        table = LIST_METHODS
    elif issubclass(python_type, dict):
        table = DICT_METHODS
    elif issubclass(python_type, (set, frozenset)):
        table = SET_METHODS
    elif issubclass(python_type, tuple):
        table = TUPLE_METHODS
    else:
        table = {}
    if name not in table:
        raise Unsupported(f"method {python_type.__name__}.{name}")
    return ContainerMethodVariable(owner, name, table[name])
