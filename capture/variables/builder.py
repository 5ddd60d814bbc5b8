"""Turn a real Python value into a variable: one read by the function through a source (guarded),
or one computed during the trace (a dict key, an attribute of a constant). This module knows every
kind of value: the kinds reach it through the translator (`tx.wrap`, `tx.build`), never by import."""
from __future__ import annotations

import builtins
import collections
import contextvars
import functools
import logging
import types
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.utils._contextlib as torch_contextlib

from ..exc import Unsupported
from ..guards import Guard, tensor_guards
from ..sources import AttrSource, GetItemSource, GlobalSource, Source
from .base import VariableTracker
from .builtin_calls import is_special_callable
from .constant import ConstantVariable, is_constant_value
from .context_vars import ContextVarVariable
from .constant_values import wrap_constant
from .containers import ListVariable, TupleVariable
from .dicts import ConstDictVariable, SetVariable, _Unread, is_source_key
from .functions import BuiltinVariable, ClosureFunctionVariable, UserFunctionVariable
from .autocast import AUTOCAST_CLASSES, AutocastClassVariable
from .grad_mode import GRAD_MODE_CLASSES, GradModeClassVariable, GradModeContextVariable
from .nested import CodeVariable, PartialVariable
from .nn_module import BoundMethodVariable, NNModuleVariable
from .opaque import AllowedFunctionVariable, OpaqueVariable, opaque
from .read_through import ReadThroughObjectVariable, is_read_through, read_through_guards
from .collectives import (DistributedFunctionVariable, DistributedValueVariable, is_distributed_callable,
                          is_distributed_value)
from .torch import ModuleVariable, TorchFunctionVariable, is_allowed_module, is_torch_callable
from .user_dicts import UserDictVariable, is_dict_object, is_user_dict
from .user_objects import (NamedTupleVariable, PythonTypeVariable, UserObjectVariable, is_namedtuple_class,
                           is_user_object)


def _noun(source: Source | None, default: str) -> str:
    return "global" if isinstance(source, GlobalSource) else default


def _wrap_tensor(tx, value, source):
    if type(value) not in (torch.Tensor, torch.nn.Parameter):
        raise Unsupported(f"tensor subclass {type(value).__name__} ({source.name()})")
    variable = tx.output.add_tensor_input(source, value)
    tx.output.guards.extend(tensor_guards(source, value, variable.example))
    return variable


def _wrap_constant(tx, value, source):
    if type(value) is int and tx.output.policy.int_is_dynamic(source, value):  # automatic dynamic, dynamic=True
        tx.output.guards.add(Guard(source, "TYPE_MATCH", int, noun=_noun(source, "value")))
        return tx.output.add_int_input(source, value)
    if type(value) is float and tx.output.policy.float_is_dynamic(source, value):  # lifted (scalar lifting)
        tx.output.guards.add(Guard(source, "TYPE_MATCH", float, noun=_noun(source, "value")))
        return tx.output.add_float_input(source, value)
    if type(value) is torch.Size and tx.output.policy.may_be_dynamic(source):  # (a shape carried across a break)
        return _wrap_sequence(tx, value, source)
    tx.output.guards.add(Guard(source, "CONSTANT_MATCH", value, noun=_noun(source, "value")))
    return ConstantVariable(value, source)


def _wrap_sequence(tx, value, source):
    tx.output.guards.add(Guard(source, "TYPE_MATCH", type(value), noun=_noun(source, "value")))
    tx.output.guards.add(Guard(source, "LENGTH", len(value), noun=_noun(source, "value")))
    items = [wrap_value(tx, item, GetItemSource(source, index)) for index, item in enumerate(value)]
    if type(value) is torch.Size:
        return TupleVariable(items, source, python_container=torch.Size)
    return (ListVariable if isinstance(value, list) else TupleVariable)(items, source)


def _wrap_namedtuple(tx, value, source):
    tx.output.guards.add(Guard(source, "TYPE_MATCH", type(value), noun=_noun(source, "value")))
    items = [wrap_value(tx, item, GetItemSource(source, index)) for index, item in enumerate(value)]
    return NamedTupleVariable(items, source, python_container=type(value), cls_source=AttrSource(source, "__class__"))


def _wrap_dict(tx, value, source):
    if not all(is_source_key(key) for key in value):  # each value is read as source[key]
        raise Unsupported(f"dict {source.name()} with keys other than str, int, bool or None")
    tx.output.guards.add(Guard(source, "TYPE_MATCH", type(value), noun=_noun(source, "dict")))
    tx.output.guards.add(Guard(source, "KEYS", tuple(value), noun=_noun(source, "dict")))
    return ConstDictVariable({key: _Unread(item) for key, item in value.items()}, source, type(value))


def _wrap_user_dict(tx, value, source):
    if not all(is_source_key(key) for key in value):
        raise Unsupported(f"dict {source.name()} with keys other than str, int, bool or None")
    tx.output.guards.add(Guard(source, "TYPE_MATCH", type(value), noun=_noun(source, "dict")))
    tx.output.guards.add(Guard(source, "KEYS", tuple(value), noun=_noun(source, "dict")))
    return UserDictVariable({key: _Unread(item) for key, item in value.items()}, source, type(value), value)


def _wrap_set(tx, value, source):
    tx.output.guards.add(Guard(source, "CONSTANT_MATCH", set(value), noun=_noun(source, "set")))
    return SetVariable(set(value), source)


def _wrap_partial(tx, value, source):
    tx.output.guards.add(Guard(source, "TYPE_MATCH", type(value), noun=_noun(source, "partial")))
    args = wrap_value(tx, value.args, AttrSource(source, "args"))
    keywords = wrap_value(tx, value.keywords, AttrSource(source, "keywords"))
    return PartialVariable(wrap_value(tx, value.func, AttrSource(source, "func")), args.items, keywords, source)


def _wrap_bound_method(tx, value, source):
    tx.output.guards.add(Guard(source, "TYPE_MATCH", type(value), noun=_noun(source, "method")))
    return BoundMethodVariable(wrap_value(tx, value.__self__, AttrSource(source, "__self__")),
                               wrap_value(tx, value.__func__, AttrSource(source, "__func__")))


def _wrap_user_object(tx, value, source):
    tx.output.guards.add(Guard(source, "TYPE_MATCH", type(value), noun=_noun(source, "object")))
    return UserObjectVariable(type(value), source, value)


def _wrap_read_through(tx, value, source):
    tx.output.guards.extend(read_through_guards(value, source))
    return ReadThroughObjectVariable(value, source)


def _by_identity(variable_type: Callable) -> Callable:
    def wrap(tx, value, source):
        tx.output.guards.add(Guard(source, "ID_MATCH", value, noun=_noun(source, "value")))
        return variable_type(value, source)
    return wrap


def _is_closure(value) -> bool:
    """A plain function with a closure (not a grad-mode decorator's wrapper, whose cells decide
    what a call does)."""
    code = value.__code__
    return bool(value.__closure__) and not (code.co_name == "decorate_context" and
                                            code.co_filename == torch_contextlib.__file__)


def _wrap_closure(tx, value, source):
    noun = _noun(source, "function")
    tx.output.guards.add(Guard(source, "TYPE_MATCH", types.FunctionType, noun=noun))
    tx.output.guards.add(Guard(AttrSource(source, "__code__"), "ID_MATCH", value.__code__, noun="function code"))
    tx.output.guards.add(Guard(AttrSource(source, "__globals__"), "ID_MATCH", value.__globals__,
                               noun="function globals"))
    return ClosureFunctionVariable(value, source)


def _other_module(tx, value, source):
    """A module other than torch's (time, numpy...): carried as is; using it breaks the graph."""
    return OpaqueVariable(value, source, f"module {value.__name__} ({source.name()}), not a torch module",
                          "capture traces torch modules only: the graph breaks where this module is used")


# (matches, wrap): the first match decides. Order matters: Size before tuple, etc.
def _marked(name: str) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, types.FunctionType) and v.__dict__.get(name, False)


def _wrap_grad_context(tx, value, source):
    tx.output.guards.add(Guard(source, "TYPE_MATCH", type(value), noun=_noun(source, "context")))
    if type(value) is not torch.set_grad_enabled:
        return GradModeContextVariable(type(value) is torch.enable_grad)
    tx.output.guards.add(Guard(AttrSource(source, "mode"), "CONSTANT_MATCH", value.mode, noun="mode"))
    tx.output.guards.add(Guard(AttrSource(source, "prev"), "CONSTANT_MATCH", value.prev, noun="mode"))
    context = GradModeContextVariable(value.mode, set_on_construction=True)
    context.prev = value.prev
    return context


WRAPPERS: list[tuple[Callable[[Any], bool], Callable]] = [
    (lambda v: isinstance(v, torch.Tensor), _wrap_tensor),
    (_marked("_kiln_disable"), lambda tx, value, source: opaque(tx, value, source)),
    (_marked("_kiln_allow_in_graph"), _by_identity(AllowedFunctionVariable)),
    (lambda v: type(v) in GRAD_MODE_CLASSES, _wrap_grad_context),  # a context object a graph break passed on
    (is_constant_value, _wrap_constant),
    (lambda v: type(v) in (tuple, list), _wrap_sequence),
    (lambda v: is_namedtuple_class(type(v)), _wrap_namedtuple),
    (lambda v: type(v) in (dict, collections.OrderedDict), _wrap_dict),
    (is_user_dict, _wrap_user_dict),                        # dict subclasses with Python methods
    (lambda v: type(v) is set and all(is_constant_value(item) for item in v), _wrap_set),
    (lambda v: type(v) is functools.partial, _wrap_partial),
    (lambda v: type(v) is types.MethodType and isinstance(v.__func__, types.FunctionType), _wrap_bound_method),
    (lambda v: isinstance(v, types.ModuleType) and is_allowed_module(v), _by_identity(ModuleVariable)),
    (lambda v: isinstance(v, types.ModuleType), _other_module),
    (lambda v: isinstance(v, torch.nn.Module), _by_identity(NNModuleVariable)),
    (lambda v: isinstance(v, type) and v in GRAD_MODE_CLASSES, _by_identity(GradModeClassVariable)),
    (lambda v: isinstance(v, type) and v in AUTOCAST_CLASSES, _by_identity(AutocastClassVariable)),
    (lambda v: isinstance(v, type), _by_identity(PythonTypeVariable)),
    (is_distributed_callable, _by_identity(DistributedFunctionVariable)),  # before torch's: a subset
    (is_distributed_value, _by_identity(DistributedValueVariable)),
    (is_torch_callable, _by_identity(TorchFunctionVariable)),
    (lambda v: isinstance(v, types.BuiltinFunctionType) and getattr(builtins, getattr(v, "__name__", ""), None) is v,
     _by_identity(BuiltinVariable)),
    (lambda v: isinstance(v, types.BuiltinFunctionType) and getattr(v, "__module__", "") == "math",
     _by_identity(BuiltinVariable)),
    (is_special_callable, _by_identity(BuiltinVariable)),   # functools.reduce & co
    (lambda v: type(v) is types.FunctionType and _is_closure(v), _wrap_closure),
    (lambda v: isinstance(v, types.FunctionType), _by_identity(UserFunctionVariable)),
    (lambda v: isinstance(v, types.CodeType), _by_identity(CodeVariable)),
    (lambda v: type(v) is contextvars.ContextVar, _by_identity(ContextVarVariable)),
    (lambda v: isinstance(v, logging.Logger), lambda tx, value, source: opaque(tx, value, source)),  # logging breaks
    (is_user_object, _wrap_user_object),                    # instances of plain Python classes
    (is_dict_object, _wrap_user_object),                    # and of dict subclasses read their own way
    (is_read_through, _wrap_read_through),                  # transformers' configs
]

@dataclass
class MutableObject:
    """A mutable object read from outside: its one variable and every source that reached it
    (OutputGraph.mutable_objects, keyed by id)."""
    value: Any                    # kept alive so its id stays unique
    variable: VariableTracker
    sources: list[Source]


# Objects a function can mutate: one variable per object however it is reached (see
# OutputGraph.mutable_objects).
_is_mutable_object = lambda v: (type(v) in (list, dict, collections.OrderedDict) or is_user_object(v)  # noqa: E731
                                or is_user_dict(v) or is_dict_object(v))


def wrap_value(tx, value: Any, source: Source | None, guard: bool = True) -> VariableTracker:
    """The variable for `value` read from `source`; cached per source so one value is one input.

    guard=False is for attributes of library modules, which are assumed not to change.
    """
    if source is not None and source in tx.output.variables_by_source:
        return tx.output.variables_by_source[source]
    mutable = source is not None and _is_mutable_object(value)
    if mutable and id(value) in tx.output.mutable_objects:  # the same object under another name
        seen = tx.output.mutable_objects[id(value)]
        tx.output.guards.add(Guard(source, "SAME_OBJECT", seen.sources[0], noun="object"))
        seen.sources.append(source)
        tx.output.variables_by_source[source] = seen.variable
        return seen.variable
    for matches, wrap in WRAPPERS:
        if matches(value):
            if not guard and not isinstance(value, torch.Tensor):
                variable = _wrap_unguarded(tx, value, source, wrap)
            else:
                variable = wrap(tx, value, source)
            if source is not None:
                tx.output.variables_by_source[source] = variable
            if mutable:
                tx.output.mutable_objects[id(value)] = MutableObject(value, variable, [source])
            return variable
    if source is not None:  # carried as is; using it breaks the graph (variables/opaque.py)
        return opaque(tx, value, source)
    raise Unsupported(f"value of type {type(value).__name__}")


def _wrap_unguarded(tx, value, source, wrap):
    saved = tx.output.guards
    tx.output.guards = type(saved)()  # collect and drop the guards
    try:
        return wrap(tx, value, source)
    finally:
        tx.output.guards = saved


# -- values computed during the trace: no source, nothing to guard ----------------------------

def build_value(value: Any) -> VariableTracker:
    """A dict key or an item of a constant: a class, or what wrap_constant makes."""
    if isinstance(value, type):
        return PythonTypeVariable(value)
    return wrap_constant(value)


def constant_attribute(value: Any) -> VariableTracker:
    """An attribute read from a constant. Constants are immutable, so its methods are pure."""
    if isinstance(value, (types.BuiltinMethodType, types.MethodType, types.MethodWrapperType)):
        return BuiltinVariable(value, pure=True)
    return wrap_constant(value)
