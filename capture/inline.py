"""Inlining calls to user Python functions: a child InstructionTranslator runs the callee's
bytecode over the caller's symbolic values, recording into the same output graph."""
from __future__ import annotations

import inspect
import types

from .exc import TorchOpError, Unsupported
from .sources import AttrSource, GetItemSource, GlobalSource, Source


def _where(code: types.CodeType) -> str:
    return f"{code.co_qualname} ({code.co_filename}:{code.co_firstlineno})"


def _bind(tx, fn, source: Source, args, kwargs) -> dict:
    """Bind symbolic args to the callee's parameters; defaults are read through sources."""
    from .variables import TupleVariable
    from .variables.builder import wrap_value
    signature = inspect.signature(fn, follow_wrapped=False)
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as error:  # the user's own error: eager raises it for real
        raise TorchOpError(f"call to {fn.__qualname__}", error) from error
    parameters = list(signature.parameters.values())
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    defaults = fn.__defaults__ or ()
    first_default = len(positional) - len(defaults)
    arguments = {}
    for index, parameter in enumerate(parameters):
        name = parameter.name
        if parameter.kind is parameter.VAR_POSITIONAL:
            arguments[name] = TupleVariable(list(bound.arguments.get(name, ())))
        elif parameter.kind is parameter.VAR_KEYWORD:
            if bound.arguments.get(name):
                raise Unsupported(f"**{name} of {_where(fn.__code__)} receiving keyword arguments")
            raise Unsupported(f"**{name} parameter of {_where(fn.__code__)}")
        elif name in bound.arguments:
            arguments[name] = bound.arguments[name]
        elif parameter.kind is parameter.KEYWORD_ONLY:
            arguments[name] = wrap_value(tx, fn.__kwdefaults__[name],
                                         GetItemSource(AttrSource(source, "__kwdefaults__"), name))
        else:
            position = index - first_default
            arguments[name] = wrap_value(tx, defaults[position],
                                         GetItemSource(AttrSource(source, "__defaults__"), position))
    return arguments


def inline_user_function(tx, function_variable, args, kwargs):
    """Trace `fn(*args, **kwargs)` in a child translator; returns the returned variable."""
    from .interpreter import MAX_INLINE_DEPTH, InstructionTranslator
    fn, source = function_variable.fn, function_variable.source
    code = fn.__code__
    if source is None:
        raise Unsupported(f"call to {_where(code)}, a function with no source")
    if code.co_flags & (inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR):
        raise Unsupported(f"call to generator or coroutine function {_where(code)}")
    if tx.depth + 1 > MAX_INLINE_DEPTH:
        raise Unsupported(f"inlining depth above {MAX_INLINE_DEPTH} at {_where(code)} (deep recursion)")
    arguments = _bind(tx, fn, source, args, kwargs)
    if fn.__globals__ is tx.frame.G:
        global_source = GlobalSource
    else:
        globals_source = AttrSource(source, "__globals__")
        global_source = lambda name: GetItemSource(globals_source, name)  # noqa: E731
    closure_base = AttrSource(source, "__closure__")
    child = InstructionTranslator(
        code, tx.frame, tx.output, depth=tx.depth + 1, f_globals=fn.__globals__,
        global_source=global_source, closure=fn.__closure__ or (),
        closure_source=lambda name, index: AttrSource(GetItemSource(closure_base, index), "cell_contents"))
    child.locals = dict(arguments)
    result = child.run()
    tx.output.location = tx._stack_trace(tx.current)
    return result
