"""Builtins (and a few library callables) over symbolic values: one handler per callable.

A handler takes (tx, args, kwargs) and returns a variable, or None to leave the call to the
generic rules (constant folding of pure builtins, the tensor special cases). The handlers make
dicts, partials, super objects, classes...: this module sits above those kinds and fills the
table BuiltinVariable looks them up in (functions.SPECIAL_CALLS) when it is imported.
"""
from __future__ import annotations

import builtins
import collections
import functools
import operator
from typing import Callable

import torch

from ..exc import TorchOpError, Unsupported
from ..guards import Guard
from ..sources import AttrSource
from .base import VariableTracker
from .constant import ConstantVariable
from .constant_values import wrap_constant
from .containers import ListVariable
from .dicts import ConstDictVariable, SetVariable, constant_key
from .functions import SPECIAL_CALLS, special_call
from .iterators import MapVariable, get_iter
from .methods import sort_keys, sorted_items
from .nested import make_partial
from .nn_module import NNModuleVariable
from .tensor import METADATA_ATTRIBUTES, TENSOR_ATTRIBUTES, TensorVariable
from .user_objects import (PythonTypeVariable, SuperVariable, UserObjectVariable, find_class_attribute,
                           zero_argument_super)


def python_type_of(value: VariableTracker) -> type:
    try:
        return value.python_type()
    except Unsupported:
        pass
    if value.is_python_constant():
        return type(value.as_python_constant())
    raise Unsupported(f"type() of {value!r}")


def _is_constant(value: VariableTracker) -> bool:
    return isinstance(value, ConstantVariable) or value.is_python_constant()


# -- constructors ----------------------------------------------------------------------------

def _dict(tx, args, kwargs):
    result = ConstDictVariable({})
    if len(args) > 1:
        raise TorchOpError("dict()", TypeError(f"dict expected at most 1 argument, got {len(args)}"))
    if args:
        result.update_from(tx, args[0])
    result.update_from(tx, ConstDictVariable(dict(kwargs)))
    return result


def _set(tx, args, kwargs):
    if args and args[0].is_python_constant():  # the real constructor: eager's iteration order
        return SetVariable(set(args[0].as_python_constant()))
    return SetVariable.from_variables(args[0].unpack(tx) if args else [])


def _ordered_dict(tx, args, kwargs):
    result = _dict(tx, args, kwargs)
    result.user_cls = collections.OrderedDict
    return result


def _namedtuple_factory(tx, args, kwargs):
    raise Unsupported("creating a namedtuple class inside the compiled function",
                      hint="define the namedtuple at module level; instances of it can be built inside")


def _frozenset(tx, args, kwargs):
    return wrap_constant(frozenset(constant_key(item) for item in (args[0].unpack(tx) if args else [])))


def _partial(tx, args, kwargs):
    return make_partial(tx, args, kwargs)


def _super(tx, args, kwargs):
    if not args:
        return zero_argument_super(tx)
    if len(args) == 2:
        return SuperVariable(args[0], args[1])
    raise Unsupported("super() with one argument")


def _object_setattr(tx, args, kwargs):
    target, name, value = args
    if not isinstance(target, UserObjectVariable):
        raise Unsupported(f"object.__setattr__ on {target!r}")
    target.raw_setattr(tx, name.as_python_constant(), value)
    return wrap_constant(None)


# -- queries ---------------------------------------------------------------------------------

def _isinstance(tx, args, kwargs):
    value, classes = args
    if isinstance(value, TensorVariable):
        return None  # the tensor special case asks the fake tensor
    return wrap_constant(isinstance_of_type(python_type_of(value), classes.as_python_constant()))


def isinstance_of_type(value_type: type, classes) -> bool:
    if isinstance(classes, tuple):
        return any(isinstance_of_type(value_type, each) for each in classes)
    if not isinstance(classes, type):
        raise Unsupported(f"isinstance() against {classes!r}")
    return issubclass(value_type, classes)


def _len(tx, args, kwargs):
    length = getattr(args[0], "length", None) if len(args) == 1 else None
    if length is None:
        return None
    return wrap_constant(length(tx))


def _bool(tx, args, kwargs):
    """bool(obj) of a container or object: its truth value, as `if obj:` takes it."""
    if len(args) != 1 or kwargs or isinstance(args[0], TensorVariable) or args[0].is_python_constant():
        return None
    return wrap_constant(tx.truthiness(args[0]))


def _id(tx, args, kwargs):
    """id(obj) of an object read through a source: its identity is guarded, so the id is too.
    (A tensor's id would recompile on every new tensor; objects built here have no id yet.)"""
    if len(args) != 1 or kwargs or args[0].source is None or isinstance(args[0], TensorVariable):
        return None
    value = tx.frame.fetch(args[0].source)
    tx.output.guards.add(Guard(args[0].source, "ID_MATCH", value, noun="object"))
    return wrap_constant(id(value))


def _type(tx, args, kwargs):
    if len(args) != 1 or kwargs:
        raise Unsupported("type() with more than one argument (making a class)")
    if isinstance(args[0], TensorVariable):  # inputs' types are guarded; fake tensors keep Parameter-ness
        return PythonTypeVariable(torch.nn.Parameter if isinstance(args[0].example, torch.nn.Parameter)
                                  else torch.Tensor)
    cls = python_type_of(args[0])
    source = getattr(args[0], "cls_source", None)
    if isinstance(args[0], NNModuleVariable) and args[0].source is not None:
        source = AttrSource(args[0].source, "__class__")  # (the module is guarded by identity)
    return PythonTypeVariable(cls, source)


def _callable(tx, args, kwargs):
    (value,) = args
    try:
        value_type = python_type_of(value)
    except Unsupported:  # functions, methods and the like know how to be called
        return wrap_constant(type(value).call is not VariableTracker.call)
    return wrap_constant(any("__call__" in klass.__dict__ for klass in value_type.__mro__))


def has_attribute(tx, value: VariableTracker, name: str) -> bool:
    """hasattr(value, name), with the guards that keep the answer true."""
    check = getattr(value, "has_attribute", None)
    if check is not None:
        return check(tx, name)
    if isinstance(value, TensorVariable):
        if name in METADATA_ATTRIBUTES or name in TENSOR_ATTRIBUTES or hasattr(torch.Tensor, name):
            return True
        return _tensor_has_python_attribute(tx, value, name)
    if isinstance(value, NNModuleVariable):
        return _module_has_attribute(tx, value, name)
    if _is_constant(value):
        return hasattr(value.as_python_constant(), name)
    try:
        value.var_getattr(tx, name)
        return True
    except TorchOpError:
        return False


def _tensor_has_python_attribute(tx, value: TensorVariable, name: str) -> bool:
    """hasattr(tensor, name) for a name torch.Tensor lacks (transformers asks `hasattr(x, "jax")`):
    a tensor an op made here has no Python attributes (the trace cannot set them); an input's
    __dict__ is checked now and guarded."""
    if value.source is None:
        return False
    if name in getattr(tx.frame.fetch(value.source), "__dict__", {}):
        raise Unsupported(f"hasattr(tensor, {name!r}) of a tensor carrying a Python attribute {name!r}")
    tx.output.guards.add(Guard(AttrSource(value.source, "__dict__"), "NOT_IN", name, noun="tensor"))
    return False


def _module_has_attribute(tx, module_variable, name: str) -> bool:
    module = module_variable.module
    written = tx.output.side_effects.read(module, name)  # set or deleted earlier in the trace
    if written is not None:
        return written.value is not None
    tables = ("_parameters", "_buffers", "_modules")
    if any(name in module.__dict__.get(table, {}) for table in tables) or name in module.__dict__:
        module_variable.var_getattr(tx, name)
        return True
    if module_variable.source is None:
        raise Unsupported("hasattr on a module with no source")
    for table in tables:
        tx.output.guards.add(Guard(AttrSource(module_variable.source, table), "NOT_IN", name, noun="module"))
    tx.output.guards.add(Guard(AttrSource(module_variable.source, "__dict__"), "NOT_IN", name, noun="module"))
    descriptor, _ = find_class_attribute(tx, type(module), AttrSource(module_variable.source, "__class__"), name)
    return descriptor is not None


def _hasattr(tx, args, kwargs):
    value, name = args
    return wrap_constant(has_attribute(tx, value, name.as_python_constant()))


def _getattr(tx, args, kwargs):
    value, name, *default = args
    name = name.as_python_constant()
    if default and not has_attribute(tx, value, name):
        return default[0]
    return value.var_getattr(tx, name)


# -- iteration -------------------------------------------------------------------------------

def _iter(tx, args, kwargs):
    if len(args) != 1:
        raise Unsupported("iter() with a sentinel")
    return get_iter(tx, args[0])


def _next(tx, args, kwargs):
    iterator, *default = args
    if not hasattr(iterator, "next_item"):
        raise Unsupported(f"next() of {iterator!r}")
    item = iterator.next_item(tx)
    if item is None:
        if default:
            return default[0]
        raise TorchOpError("next()", StopIteration())
    return item


def _items_of(tx, iterable: VariableTracker) -> list[VariableTracker]:
    return iterable.unpack(tx)


def _sum(tx, args, kwargs):
    iterable, *rest = args
    start = rest[0] if rest else kwargs.get("start", wrap_constant(0))
    if _is_constant(iterable) and _is_constant(start):
        return None
    total = start
    for item in _items_of(tx, iterable):  # the same additions eager makes, in order
        total = tx.apply_operator(operator.add, [total, item])
    return total


def _any_all(want: bool):
    def scan(tx, args, kwargs):
        (iterable,) = args
        if _is_constant(iterable):
            return None
        iterator = get_iter(tx, iterable)
        while (item := iterator.next_item(tx)) is not None:  # lazily: stops where eager stops
            if tx.truthiness(item) == want:
                return wrap_constant(want)
        return wrap_constant(not want)
    return scan


def _sorted(tx, args, kwargs):
    (iterable,) = args
    if _is_constant(iterable) and "key" not in kwargs:
        return None
    return ListVariable(sorted_items(tx, _items_of(tx, iterable), kwargs.get("key"), kwargs.get("reverse")))


def _map(tx, args, kwargs):
    fn, *iterables = args
    if not iterables:
        raise TorchOpError("map()", TypeError("map() must have at least two arguments."))
    return MapVariable(fn, [get_iter(tx, iterable) for iterable in iterables])


def _min_max(fold: Callable):
    def pick(tx, args, kwargs):
        items = args[0].unpack(tx) if len(args) == 1 else list(args)
        if set(kwargs) - {"key"}:
            raise Unsupported(f"{fold.__name__}() with {sorted(kwargs)}")
        if "key" not in kwargs and all(_is_constant(item) for item in items):
            return None  # plain constant folding
        keys = sort_keys(tx, items, kwargs.get("key"))  # Unsupported unless the keys are constants
        if not items:
            raise TorchOpError(f"{fold.__name__}()", ValueError("empty sequence"))
        return items[fold(range(len(items)), key=lambda position: keys[position])]
    return pick


def _reduce(tx, args, kwargs):
    fn, iterable, *initial = args
    items = _items_of(tx, iterable)
    if initial:
        accumulated = initial[0]
    elif items:
        accumulated, items = items[0], items[1:]
    else:
        raise TorchOpError("functools.reduce()", TypeError("reduce() of empty iterable with no initial value"))
    for item in items:
        accumulated = fn.call(tx, [accumulated, item], {})
    return accumulated


SPECIAL_CALLS.update({  # the table BuiltinVariable.call tries first (variables/functions.py)
    builtins.dict: _dict, builtins.set: _set, collections.OrderedDict: _ordered_dict,
    collections.namedtuple: _namedtuple_factory, builtins.frozenset: _frozenset, functools.partial: _partial,
    builtins.super: _super, object.__setattr__: _object_setattr,
    builtins.isinstance: _isinstance, builtins.len: _len, builtins.bool: _bool, builtins.id: _id,
    builtins.type: _type, builtins.callable: _callable,
    builtins.hasattr: _hasattr, builtins.getattr: _getattr,
    builtins.iter: _iter, builtins.next: _next, builtins.sum: _sum, builtins.any: _any_all(True),
    builtins.all: _any_all(False), builtins.sorted: _sorted, builtins.map: _map,
    builtins.min: _min_max(min), builtins.max: _min_max(max), functools.reduce: _reduce,
})


def is_special_callable(value) -> bool:
    """functools.reduce, collections.namedtuple & co: handled here rather than inlined or refused."""
    return not isinstance(value, type) and special_call(value) is not None
