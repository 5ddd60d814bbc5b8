"""List methods, item assignment and in-place operators on ListVariables.

Each mutation changes the variable's symbolic items with Python's own list semantics and,
for a list read from outside the function, marks it in the side-effects table so that its
final contents are written back after the graph runs. Errors eager would raise (pop from
an empty list, a bad index) become TorchOpError: the function then runs eagerly and raises
them for real.
"""
from __future__ import annotations

from typing import Callable

from ..exc import TorchOpError, Unsupported
from .base import VariableTracker
from .constant import wrap_constant


def _constant(variable: VariableTracker, what: str):
    if not variable.is_python_constant():
        raise Unsupported(f"list {what} with a non-constant argument {variable!r}")
    return variable.as_python_constant()


def _python_error(description: str, action: Callable):
    try:
        return action()
    except (IndexError, ValueError, TypeError) as error:
        raise TorchOpError(description, error) from error


def _mutating(method):
    def run(tx, lst, args, kwargs):
        if kwargs:
            raise Unsupported(f"list.{method.__name__.strip('_')}() with keyword arguments")
        result = method(tx, lst, *args)
        return wrap_constant(None) if result is None else result
    return run


def _mark(tx, lst) -> None:
    if getattr(lst, "walked_lazily", False):  # the unrolled loop walked a snapshot; eager walks the list
        raise Unsupported(f"mutating {lst!r}, a list enumerate()/zip()/reversed() iterates over",
                          hint="iterate over a copy (list(xs)) or mutate after the trace")
    tx.output.side_effects.mutate_list(lst)


@_mutating
def _append(tx, lst, item):
    _mark(tx, lst)
    lst.items.append(item)


@_mutating
def _extend(tx, lst, iterable):
    items = iterable.unpack(tx)
    _mark(tx, lst)
    lst.items.extend(items)


@_mutating
def _insert(tx, lst, index, item):
    position = _constant(index, "insert()")
    _mark(tx, lst)
    lst.items.insert(position, item)


@_mutating
def _pop(tx, lst, index=None):
    position = -1 if index is None else _constant(index, "pop()")
    _python_error("list.pop()", lambda: lst.items[position])  # IndexError before any change
    _mark(tx, lst)
    return lst.items.pop(position)


@_mutating
def _clear(tx, lst):
    _mark(tx, lst)
    lst.items.clear()


@_mutating
def _reverse(tx, lst):
    _mark(tx, lst)
    lst.items.reverse()


@_mutating
def _remove(tx, lst, value):
    position = _find(lst, value, "remove()")
    _mark(tx, lst)
    del lst.items[position]


def _find(lst, value: VariableTracker, what: str) -> int:
    """list.index semantics: identity first, then ==; only decidable at trace time for the
    same variable or for constants."""
    for position, item in enumerate(lst.items):
        if item is value:
            return position
        if item.is_python_constant() and value.is_python_constant():
            if item.as_python_constant() == value.as_python_constant():
                return position
            continue
        raise Unsupported(f"list.{what} comparing {item!r} with {value!r} (would read tensor data)")
    raise TorchOpError(f"list.{what}", ValueError("list.remove(x): x not in list"))


def _sort(tx, lst, args, kwargs):
    if args or not all(item.is_python_constant() for item in lst.items):
        raise Unsupported("list.sort() of non-constant items")
    options = {key: _constant(value, "sort()") for key, value in kwargs.items()}
    values = _python_error("list.sort()", lambda: sorted((i.as_python_constant() for i in lst.items), **options))
    _mark(tx, lst)
    lst.items[:] = [wrap_constant(value) for value in values]
    return wrap_constant(None)


def _copy(tx, lst, args, kwargs):
    from .containers import ListVariable
    return ListVariable(list(lst.items))


def _query(name: str):
    """index() / count(): pure, answered for constant lists."""
    def run(tx, lst, args, kwargs):
        if not lst.is_python_constant():
            raise Unsupported(f"list.{name}() on a list of non-constants")
        values = [_constant(arg, f"{name}()") for arg in args]
        return wrap_constant(_python_error(f"list.{name}()", lambda: getattr(lst.as_python_constant(), name)(*values)))
    return run


LIST_METHODS: dict[str, Callable] = {
    "append": _append, "extend": _extend, "insert": _insert, "pop": _pop, "clear": _clear,
    "reverse": _reverse, "remove": _remove, "sort": _sort, "copy": _copy,
    "index": _query("index"), "count": _query("count"),
}


class ListMethodVariable(VariableTracker):
    """`some_list.append` and friends, waiting to be called."""

    def __init__(self, lst: VariableTracker, name: str):
        super().__init__(None)
        self.lst, self.name = lst, name

    def call(self, tx, args, kwargs) -> VariableTracker:
        return LIST_METHODS[self.name](tx, self.lst, list(args), dict(kwargs))

    def __repr__(self) -> str:
        return f"ListMethodVariable(list.{self.name})"


def setitem(tx, lst, index: VariableTracker, value: VariableTracker) -> None:
    key = _constant(index, "item assignment")
    if isinstance(key, slice):
        new_items = value.unpack(tx)
        trial = list(lst.items)
        _python_error("list slice assignment", lambda: trial.__setitem__(key, new_items))
        _mark(tx, lst)
        lst.items[:] = trial
        return
    _python_error("list assignment", lambda: lst.items[key])
    _mark(tx, lst)
    lst.items[key] = value


def delitem(tx, lst, index: VariableTracker) -> None:
    key = _constant(index, "item deletion")
    _python_error("list deletion", lambda: lst.items[key])
    _mark(tx, lst)
    del lst.items[key]


def inplace_operator(tx, lst, operator_name: str, right: VariableTracker) -> VariableTracker:
    """`lst += iterable` extends in place; `lst *= n` repeats in place; both return lst."""
    if operator_name == "add":
        items = right.unpack(tx)
        _mark(tx, lst)
        lst.items.extend(items)
    elif operator_name == "mul":
        count = _constant(right, "*=")
        if not isinstance(count, int):
            raise TorchOpError("list *=", TypeError(f"can't multiply sequence by {type(count).__name__}"))
        _mark(tx, lst)
        lst.items[:] = lst.items * count
    else:
        raise TorchOpError(f"list {operator_name}=", TypeError(f"unsupported operand for list {operator_name}="))
    return lst


__all__ = ["LIST_METHODS", "ListMethodVariable", "setitem", "delitem", "inplace_operator"]
