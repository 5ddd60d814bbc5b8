"""Inlining calls to user Python functions: a child translator runs the callee's bytecode over
the caller's symbolic values, recording into the same output graph.

Function values call `tx.inline(function, args, kwargs)`; `InliningTranslator`, the translator
api.py and breaks.py run (and every child it makes), implements it here. This module sits above
the interpreter, as it makes translators, so the values never import it.
"""
from __future__ import annotations

import inspect
import types
from typing import Callable

from .exc import TorchOpError, Unsupported
from .guards import Guard
from .interpreter import MAX_INLINE_DEPTH, InstructionTranslator
from .sources import AttrSource, GetItemSource, GlobalSource
from .variables import TupleVariable, UserFunctionVariable, VariableTracker
from .variables.functions import ClosureFunctionVariable
from .variables.builder import wrap_value
from .variables.dicts import ConstDictVariable
from .variables.iterators import GeneratorVariable
from .variables.nested import NestedFunctionVariable

UNSUPPORTED_CODE_FLAGS = {inspect.CO_COROUTINE: "coroutine", inspect.CO_ASYNC_GENERATOR: "async generator",
                          inspect.CO_ITERABLE_COROUTINE: "coroutine"}


def _where(code: types.CodeType) -> str:
    return f"{code.co_qualname} ({code.co_filename}:{code.co_firstlineno})"


def _bind_error(code: types.CodeType, message: str) -> TorchOpError:
    # The user's own error: eager raises it for real.
    return TorchOpError(f"call to {code.co_qualname}", TypeError(f"{code.co_name}() {message}"))


def bind_arguments(code: types.CodeType, args: list, kwargs: dict, n_defaults: int, *,
                   default_of: Callable[[int], object], kwdefault_of: Callable[[str], object] | None,
                   has_kwdefault: Callable[[str], bool]) -> dict:
    """Bind symbolic args to the parameters of `code` as CPython does; defaults are produced
    (and so guarded) only for the parameters that need them."""
    n_positional, n_kwonly = code.co_argcount, code.co_kwonlyargcount
    names = code.co_varnames
    positional_names = names[:n_positional]
    keyword_names = set(names[code.co_posonlyargcount:n_positional + n_kwonly])
    next_name = n_positional + n_kwonly
    varargs_name = varkw_name = None
    if code.co_flags & inspect.CO_VARARGS:
        varargs_name, next_name = names[next_name], next_name + 1
    if code.co_flags & inspect.CO_VARKEYWORDS:
        varkw_name = names[next_name]
    bound = dict(zip(positional_names, args))
    extra = list(args[n_positional:])
    if extra and varargs_name is None:
        raise _bind_error(code, f"takes {n_positional} positional arguments but {len(args)} were given")
    if varargs_name is not None:
        bound[varargs_name] = TupleVariable(extra)
    extra_keywords = {}
    for name, value in kwargs.items():
        if name in keyword_names:
            if name in bound:
                raise _bind_error(code, f"got multiple values for argument {name!r}")
            bound[name] = value
        elif varkw_name is not None:
            extra_keywords[name] = value
        else:
            raise _bind_error(code, f"got an unexpected keyword argument {name!r}")
    if varkw_name is not None:
        bound[varkw_name] = ConstDictVariable(extra_keywords)
    first_default = n_positional - n_defaults
    for index, name in enumerate(positional_names):
        if name not in bound:
            if index < first_default:
                raise _bind_error(code, f"missing required positional argument {name!r}")
            bound[name] = default_of(index - first_default)
    for name in names[n_positional:n_positional + n_kwonly]:
        if name not in bound:
            if not has_kwdefault(name):
                raise _bind_error(code, f"missing required keyword-only argument {name!r}")
            bound[name] = kwdefault_of(name)
    return bound


def inline_code(tx, code: types.CodeType, arguments: dict, *, f_globals: dict, global_source, closure: tuple,
                closure_source):
    """Run `code` with `arguments` in a child translator; returns the returned variable, or for
    a generator function the (not yet started) generator."""
    for flag, kind in UNSUPPORTED_CODE_FLAGS.items():
        if code.co_flags & flag:
            raise Unsupported(f"call to {kind} function {_where(code)}")
    if tx.depth + 1 > MAX_INLINE_DEPTH:
        raise Unsupported(f"inlining depth above {MAX_INLINE_DEPTH} at {_where(code)} (deep recursion)")
    child = InliningTranslator(code, tx.frame, tx.output, depth=tx.depth + 1, f_globals=f_globals,
                               global_source=global_source, closure=closure, closure_source=closure_source)
    child.locals = dict(arguments)
    if code.co_flags & inspect.CO_GENERATOR:
        return GeneratorVariable(child)
    result = child.run()
    tx.output.location = tx._stack_trace(tx.current)
    return result


def inline_user_function(tx, function_variable, args, kwargs):
    """Trace `fn(*args, **kwargs)` for a real function read through a source."""
    fn, source = function_variable.fn, function_variable.source
    code = fn.__code__
    if source is None:
        raise Unsupported(f"call to {_where(code)}, a function with no source")
    # A function's __code__ is writable: guarding the function is not enough.
    tx.output.guards.add(Guard(AttrSource(source, "__code__"), "ID_MATCH", code, noun="function code"))
    defaults = fn.__defaults__ or ()
    kwdefaults = fn.__kwdefaults__ or {}
    arguments = bind_arguments(
        code, list(args), dict(kwargs), len(defaults),
        default_of=lambda index: wrap_value(tx, defaults[index], GetItemSource(AttrSource(source, "__defaults__"), index)),
        kwdefault_of=lambda name: wrap_value(tx, kwdefaults[name],
                                             GetItemSource(AttrSource(source, "__kwdefaults__"), name)),
        has_kwdefault=lambda name: name in kwdefaults)
    if fn.__globals__ is tx.frame.G:
        global_source = GlobalSource
    else:
        globals_source = AttrSource(source, "__globals__")
        global_source = lambda name: GetItemSource(globals_source, name)  # noqa: E731
    closure_base = AttrSource(source, "__closure__")
    return inline_code(
        tx, code, arguments, f_globals=fn.__globals__, global_source=global_source, closure=fn.__closure__ or (),
        closure_source=lambda name, index: AttrSource(GetItemSource(closure_base, index), "cell_contents"))


def inline_nested_function(tx, function: NestedFunctionVariable, args, kwargs):
    """Trace a call of a function made in the traced code: its defaults are symbolic values."""
    defaults = function.defaults.items if function.defaults is not None else []
    kwdefaults = function.kwdefaults
    arguments = bind_arguments(
        function.code, list(args), dict(kwargs), len(defaults),
        default_of=lambda index: defaults[index],
        kwdefault_of=(lambda name: kwdefaults.value_of(tx, name)) if kwdefaults is not None else None,
        has_kwdefault=(lambda name: name in kwdefaults.items) if kwdefaults is not None else (lambda name: False))
    return inline_code(tx, function.code, arguments, f_globals=function.f_globals,
                       global_source=function.global_source, closure=function.closure, closure_source=None)


INLINERS: dict[type, Callable] = {UserFunctionVariable: inline_user_function,
                                  ClosureFunctionVariable: inline_user_function,
                                  NestedFunctionVariable: inline_nested_function}


class InliningTranslator(InstructionTranslator):
    """The translator capture runs: the interpreter, with calls of user functions inlined."""

    def inline(self, function: VariableTracker, args: list, kwargs: dict) -> VariableTracker:
        return INLINERS[type(function)](self, function, args, kwargs)
