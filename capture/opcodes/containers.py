"""Dicts, sets, starred unpacking, item assignment, membership, identity and f-strings."""
from __future__ import annotations

import operator

from ..exc import TorchOpError, Unsupported
from ..guards import Guard
from ..variables import BaseListVariable, ListVariable, TensorVariable, VariableTracker, wrap_constant
from ..variables.dicts import ConstDictVariable, SetVariable, constant_key
from ..variables.methods import same_value
from .table import handles

CONVERSIONS = {"str": str, "repr": repr, "ascii": ascii}


# -- dicts -----------------------------------------------------------------------------------

@handles("BUILD_MAP")
def build_map(tx, inst):
    flat = tx.popn(2 * inst.arg)
    tx.push(ConstDictVariable({constant_key(key): value for key, value in zip(flat[::2], flat[1::2])}))


@handles("BUILD_CONST_KEY_MAP")
def build_const_key_map(tx, inst):
    keys = tx.pop().as_python_constant()
    values = tx.popn(inst.arg)
    tx.push(ConstDictVariable(dict(zip(keys, values))))


@handles("MAP_ADD")
def map_add(tx, inst):
    value, key = tx.pop(), tx.pop()
    tx.stack[-inst.arg].setitem(tx, key, value)


@handles("DICT_UPDATE", "DICT_MERGE")
def dict_update(tx, inst):
    other = tx.pop()
    tx.stack[-inst.arg].update_from(tx, other, merge=inst.opname == "DICT_MERGE")


# -- sets ------------------------------------------------------------------------------------

@handles("LOAD_BUILD_CLASS")
def load_build_class(tx, inst):
    raise Unsupported("class definition inside the compiled function",
                      hint="define the class at module level; instances of it can be built and used inside")


@handles("BUILD_SET")
def build_set(tx, inst):
    tx.push(SetVariable.from_variables(tx.popn(inst.arg)))


@handles("SET_ADD")
def set_add(tx, inst):
    item = tx.pop()
    tx.stack[-inst.arg].items.add(constant_key(item))


@handles("SET_UPDATE")
def set_update(tx, inst):
    other, target = tx.pop(), tx.stack[-inst.arg]
    if other.is_python_constant():  # the real update, so the set's iteration order is eager's
        target.items.update(other.as_python_constant())
        return
    for item in other.unpack(tx):
        target.items.add(constant_key(item))


# -- unpacking and item assignment -----------------------------------------------------------

@handles("UNPACK_EX")
def unpack_ex(tx, inst):
    items = tx.pop().unpack(tx)
    before, after = inst.arg & 0xFF, inst.arg >> 8
    if len(items) < before + after:
        raise TorchOpError("starred unpacking", ValueError(
            f"not enough values to unpack (expected at least {before + after}, got {len(items)})"))
    middle_end = len(items) - after
    tx.stack.extend(reversed(items[middle_end:]))
    tx.push(ListVariable(items[before:middle_end]))
    tx.stack.extend(reversed(items[:before]))


def _setitem(tx, container: VariableTracker, key: VariableTracker, value: VariableTracker) -> None:
    setitem = getattr(container, "setitem", None)
    if setitem is None:
        raise Unsupported(f"item assignment on {container!r}")
    setitem(tx, key, value)


@handles("STORE_SUBSCR")
def store_subscr(tx, inst):
    key, container, value = tx.pop(), tx.pop(), tx.pop()
    _setitem(tx, container, key, value)


@handles("DELETE_SUBSCR")
def delete_subscr(tx, inst):
    key, container = tx.pop(), tx.pop()
    delitem = getattr(container, "delitem", None)
    if delitem is None:
        raise Unsupported(f"del on an item of {container!r}")
    delitem(tx, key)


# -- membership and identity -----------------------------------------------------------------

def contains(tx, container: VariableTracker, item: VariableTracker) -> bool:
    """`item in container`, answered at trace time."""
    test = getattr(container, "contains", None)
    if test is not None:
        return test(tx, item)
    if container.is_python_constant() and item.is_python_constant():
        try:
            return item.as_python_constant() in container.as_python_constant()
        except TypeError as error:
            raise TorchOpError("`in`", error) from error
    if isinstance(container, TensorVariable):
        raise Unsupported("`in` on a tensor (reads its data)")
    return any(same_value(candidate, item) for candidate in container.unpack(tx))


@handles("CONTAINS_OP")
def contains_op(tx, inst):
    container, item = tx.pop(), tx.pop()
    tx.push(wrap_constant(contains(tx, container, item) != bool(inst.arg)))


def identical(tx, left: VariableTracker, right: VariableTracker) -> bool:
    """`left is right`. Values read from two sources are compared as real objects now, and
    that answer is guarded."""
    if left is right:
        return True
    if isinstance(left, TensorVariable) and isinstance(right, TensorVariable):
        return left.node is right.node
    if isinstance(left, TensorVariable) or isinstance(right, TensorVariable):
        return False  # a tensor is never a constant, a container or a function
    if left.is_python_constant() and right.is_python_constant():
        return left.as_python_constant() is right.as_python_constant()
    if left.source is not None and right.source is not None:
        same = tx.frame.fetch(left.source) is tx.frame.fetch(right.source)
        tx.output.guards.add(Guard(left.source, "SAME_OBJECT" if same else "DIFFERENT_OBJECT", right.source))
        return same
    if left.source is None or right.source is None:
        return False  # one was made inside the function: a new object, unlike anything else
    raise Unsupported(f"`is` between {left!r} and {right!r}")


@handles("IS_OP")
def is_op(tx, inst):
    right, left = tx.pop(), tx.pop()
    tx.push(wrap_constant(identical(tx, left, right) != bool(inst.arg)))


# -- f-strings -------------------------------------------------------------------------------

def _constant_for_format(value: VariableTracker):
    if isinstance(value, TensorVariable):
        raise Unsupported("formatting a tensor into a string (reads its data)")
    try:
        return value.as_python_constant()
    except Unsupported:
        raise Unsupported(f"formatting {value!r} into a string") from None


@handles("CONVERT_VALUE")
def convert_value(tx, inst):
    tx.push(wrap_constant(CONVERSIONS[inst.argval](_constant_for_format(tx.pop()))))


@handles("FORMAT_SIMPLE")
def format_simple(tx, inst):
    tx.push(wrap_constant(format(_constant_for_format(tx.pop()))))


@handles("FORMAT_WITH_SPEC")
def format_with_spec(tx, inst):
    spec, value = tx.pop(), tx.pop()
    constant = _constant_for_format(value)
    try:
        tx.push(wrap_constant(format(constant, spec.as_python_constant())))
    except (TypeError, ValueError) as error:
        raise TorchOpError("f-string format spec", error) from error


@handles("BUILD_STRING")
def build_string(tx, inst):
    tx.push(wrap_constant("".join(part.as_python_constant() for part in tx.popn(inst.arg))))


# -- augmented assignment on containers built here -------------------------------------------

def inplace_container_op(tx, function, left: VariableTracker, right: VariableTracker) -> VariableTracker | None:
    """`xs += ys` extends the list itself (other names for it see the change); `d |= e` updates
    the dict. None: not a container case (the caller decides)."""
    if isinstance(left, ListVariable) and function is operator.add:
        left.check_mutable(tx, "+=")
        left.items.extend(right.unpack(tx))
        return left
    if isinstance(left, ListVariable) and function is operator.mul and right.is_python_constant():
        count = right.as_python_constant()
        if not isinstance(count, int):
            raise TorchOpError("list *=", TypeError(f"can't multiply sequence by {type(count).__name__}"))
        left.check_mutable(tx, "*=")
        left.items[:] = left.items * count
        return left
    if isinstance(left, BaseListVariable) and left.python_container is not list:
        return tx.apply_operator(function, [left, right])  # tuples are immutable: `t += u` rebinds
    if isinstance(left, ConstDictVariable) and function is operator.or_:
        left.update_from(tx, right)
        return left
    if isinstance(left, SetVariable) and function in INPLACE_SET_OPERATORS:
        left.check_mutable(tx, "augmented assignment")
        INPLACE_SET_OPERATORS[function](left.items, right.as_python_constant())
        return left
    return None


INPLACE_SET_OPERATORS = {operator.or_: set.__ior__, operator.and_: set.__iand__,
                         operator.sub: set.__isub__, operator.xor: set.__ixor__}
