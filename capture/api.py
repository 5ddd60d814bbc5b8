"""`compile`: the wrapper that, on each call, checks the cache, traces, compiles or falls back."""
from __future__ import annotations

import dataclasses
import functools
import inspect
import linecache
import traceback
import types
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import torch

from kiln import config
from kiln.logs import get_logger

from . import breaks, cache, distributed, dynamic, records
from .backends import lookup_backend
from .bytecode import decode, disassemble
from .bytecode.errors import CannotResume
from .bytecode.resume import clear_cache as clear_resume_cache
from .exc import DEFAULT_HINT, FULLGRAPH_HINT, FallbackWarning, TorchOpError, Unsupported
from .inline import InliningTranslator
from .interpreter import builtins_of
from .output_graph import OutputGraph
from .sources import Frame
from .variables.grad_mode import decorated_grad_mode

graph_log = get_logger("graph")
guards_log = get_logger("guards")
recompiles_log = get_logger("recompiles")
graph_breaks_log = get_logger("graph_breaks")
bytecode_log = get_logger("bytecode")


@dataclass(frozen=True)
class CompileOptions:
    backend: Any = "kiln"
    fullgraph: bool = False
    dynamic: bool | None = None  # True: every size symbolic; False: none; None: automatic (dynamic.py)

    def policy(self, code: types.CodeType) -> dynamic.DynamicPolicy:
        """Which sizes a trace of `code` makes symbolic. DDP's bucketed graphs stay static: the
        split pieces are compiled from their first call's concrete inputs."""
        bucketed = isinstance(self.backend, distributed.BucketedBackend)
        return dynamic.DynamicPolicy(False if bucketed else self.dynamic, dynamic.state_for(code),
                                     honour_marks=not bucketed)


def compile(fn_or_module=None, *, backend="kiln", fullgraph: bool = False, dynamic: bool | None = None):
    """Capture `fn_or_module` into fx graphs handed to `backend`. Usable as a decorator,
    with or without arguments. An nn.Module gets a wrapper module whose forward is compiled."""
    options = CompileOptions(backend, fullgraph, dynamic)
    if fn_or_module is None:
        return functools.partial(compile, backend=backend, fullgraph=fullgraph, dynamic=dynamic)
    if isinstance(fn_or_module, torch.nn.Module):
        return CompiledModule(fn_or_module, options)
    if not isinstance(getattr(fn_or_module, "__code__", None), types.CodeType):
        raise TypeError(f"kiln.compile expects a Python function or nn.Module, got {fn_or_module!r}")
    return _compiled_function(fn_or_module, options)


class CompiledModule(torch.nn.Module):
    """Holds the original module; calling it calls the original, whose forward runs compiled.

    The module's own `__call__` runs as it is, so its hooks (FSDP's all-gathers, user hooks) run
    eagerly around the compiled forward. A DistributedDataParallel module's forward runs as it is
    too; the module it wraps is the one compiled, its graphs split at DDP's buckets
    (capture/distributed.py)."""

    def __init__(self, module: torch.nn.Module, options: CompileOptions):
        super().__init__()
        self._orig_mod = module
        target = module.module if distributed.is_ddp(module) else module
        object.__setattr__(self, "_compiled_target", target)  # not a second submodule (state_dict keys)
        if target is not module:
            options = dataclasses.replace(options, backend=distributed.BucketedBackend(module, options.backend))
        self._compiled_forward = _compiled_function(type(target).forward, options)

    def forward(self, *args, **kwargs):
        target = self._compiled_target
        if target is self._orig_mod and not _has_hooks(target):
            return self._compiled_forward(target, *args, **kwargs)
        # the compiled forward stands in for the module's own for this call: an instance
        # attribute, which nn.Module.__call__ reads before the class's
        saved = target.__dict__.get("forward", _MISSING)
        target.__dict__["forward"] = functools.partial(self._compiled_forward, target)
        try:
            return self._orig_mod(*args, **kwargs)
        finally:
            if saved is _MISSING:
                target.__dict__.pop("forward", None)
            else:
                target.__dict__["forward"] = saved

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._orig_mod, name)


_MISSING = object()


def _has_hooks(module: torch.nn.Module) -> bool:
    """Whether calling `module` would run any hook (its own or global) besides its forward."""
    hooks = torch.nn.modules.module
    return bool(module._forward_hooks or module._forward_pre_hooks or module._backward_hooks
                or module._backward_pre_hooks or hooks._global_forward_hooks or hooks._global_forward_pre_hooks
                or hooks._global_backward_hooks or hooks._global_backward_pre_hooks)


def _compiled_function(fn: Callable, options: CompileOptions) -> Callable:
    if getattr(fn, "_kiln_disable", False):
        return fn
    decorated = decorated_grad_mode(fn)
    if decorated is not None:  # @torch.no_grad() & co: run the real context around the compiled body
        return _with_grad_mode(fn, decorated[1], options)
    signature = _code_signature(fn)
    names = _positional_names(signature)

    @functools.wraps(fn)
    def compiled(*args, **kwargs):
        return _call(fn, signature, names, options, args, kwargs)

    compiled._kiln_options = options
    compiled._kiln_original = fn
    return compiled


_SIGNATURES: dict[types.CodeType, inspect.Signature] = {}  # of functions with no defaults or annotations


def _code_signature(fn: Callable) -> inspect.Signature:
    """The parameters of `fn`'s code, which name the frame's locals. A `__signature__` set on the
    function (transformers' deprecate_kwarg exposes the wrapped function's) describes what callers
    see, not the frame: it is left out. Functions that add nothing to their code (resume
    functions, made again over new cells on every call) share one signature per code."""
    if "__signature__" not in getattr(fn, "__dict__", {}):
        if type(fn) is types.FunctionType and fn.__defaults__ is None and fn.__kwdefaults__ is None \
                and not fn.__annotations__:  # (a bound method's signature has no `self`)
            signature = _SIGNATURES.get(fn.__code__)
            if signature is None:
                signature = _SIGNATURES[fn.__code__] = inspect.signature(fn, follow_wrapped=False)
            return signature
        return inspect.signature(fn, follow_wrapped=False)
    bare = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    bare.__kwdefaults__ = fn.__kwdefaults__
    return inspect.signature(bare, follow_wrapped=False)


def _positional_names(signature: inspect.Signature) -> tuple[str, ...] | None:
    """The parameter names of a signature of plain positional parameters (a module's
    forward(self, x)), else None."""
    plain = all(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in signature.parameters.values())
    return tuple(signature.parameters) if plain else None


def _arguments(signature: inspect.Signature, names, args, kwargs) -> dict:
    """The frame's arguments by name. A call giving every parameter of a plain positional
    signature is zipped with the names: Signature.bind costs several microseconds per call."""
    if names is not None and not kwargs and len(args) == len(names):
        return dict(zip(names, args))
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def _with_grad_mode(decorated: Callable, inner: Callable, options: CompileOptions) -> Callable:
    context_factory = decorated.__closure__[decorated.__code__.co_freevars.index("ctx_factory")].cell_contents
    compiled_inner = _compiled_function(inner, options)

    @functools.wraps(decorated)
    def compiled(*args, **kwargs):
        with context_factory():
            return compiled_inner(*args, **kwargs)

    compiled._kiln_options = options
    compiled._kiln_original = decorated
    return compiled


def _backend_key(backend) -> Any:
    try:
        hash(backend)
        return backend
    except TypeError:
        return id(backend)


def _location(code: types.CodeType) -> str:
    return f"{code.co_filename}:{code.co_firstlineno}"


def _call(fn, signature: inspect.Signature, names, options: CompileOptions, args, kwargs):
    code = fn.__code__
    code_cache = cache.cache_for(code, _backend_key(options.backend))
    if code_cache.fallback_reason is not None:
        return fn(*args, **kwargs)
    frame = Frame(_arguments(signature, names, args, kwargs), fn.__globals__, builtins_of(fn.__globals__), fn.__closure__ or ())
    for entry in code_cache.entries:
        if entry.guards.check(frame):
            return entry.run(frame)
    if len(code_cache.entries) >= config.recompile_limit:
        reason = (f"recompile limit ({config.recompile_limit}) reached for {code.co_name}; "
                  f"last failure: {code_cache.entries[-1].guards.explain_failure(frame)}")
        _fall_back(fn, code_cache, reason)
        return fn(*args, **kwargs)
    if code_cache.entries:
        recompiles_log.debug("recompiling %s (%s): %s", code.co_qualname, _location(code),
                             code_cache.entries[-1].guards.explain_failure(frame))
    try:
        entry = _compile_frame_or_static(fn, frame, options)
    except Unsupported as error:
        if options.fullgraph:
            if error.hint == DEFAULT_HINT:
                error.hint = f"{DEFAULT_HINT}; {FULLGRAPH_HINT}"
            raise error.with_traceback(None) from None
        entry = _graph_break(fn, frame, options, error, code_cache)
        if entry is None:  # fell back (and said why)
            return fn(*args, **kwargs)
    except TorchOpError as error:
        # Probably the user's own error: run eagerly so the real op raises it.
        result = fn(*args, **kwargs)
        reason = f"fake tensors could not run {error}"  # eager ran fine: capture's limitation
        if options.fullgraph:
            raise Unsupported(reason) from error
        _fall_back(fn, code_cache, reason)
        return result
    except Exception as error:
        if config.strict:
            raise
        reason = f"internal error while capturing {code.co_qualname}: {type(error).__name__}: {error}"
        graph_breaks_log.debug("%s\n%s", reason, traceback.format_exc())
        _fall_back(fn, code_cache, reason)
        return fn(*args, **kwargs)
    code_cache.entries.append(entry)
    return entry.run(frame)


def _graph_break(fn, frame: Frame, options: CompileOptions, error: Unsupported, code_cache: cache.CodeCache):
    """Compile `fn` up to the instruction `error` stopped at, then resume after it
    (capture/breaks.py); None when the frame must run eagerly instead (one warning)."""
    code = fn.__code__
    try:
        entry = breaks.compile_break(fn, frame, error, lookup_backend(options.backend),
                                     lambda function: _compiled_function(function, options), options.policy(code))
    except (Unsupported, CannotResume) as why:
        _fall_back(fn, code_cache, f"{error.reason} at {error.location}; no graph break possible: {why.reason}",
                   error)
        return None
    except Exception as internal:  # BytecodeError & co: never reaches the user's code
        if config.strict:
            raise
        reason = (f"{error.reason} at {error.location}; internal error while building the graph break: "
                  f"{type(internal).__name__}: {internal}")
        graph_breaks_log.debug("%s\n%s", reason, traceback.format_exc())
        _fall_back(fn, code_cache, reason)
        return None
    records.RECORDS.append(records.CompiledGraphRecord(
        code.co_qualname, _location(code), entry.prefix.graph_module, repr(entry.guards), graph_break=entry.graph_break))
    return entry


def _compile_frame_or_static(fn, frame: Frame, options: CompileOptions) -> cache.CacheEntry:
    """Compile the frame; when an op cannot run on symbolic sizes, once more with static ones."""
    try:
        return _compile_frame(fn, frame, options)
    except TorchOpError as error:
        if not getattr(error, "symbolic", False):
            raise
        recompiles_log.debug("%s: %s on symbolic sizes; compiling with static sizes", fn.__code__.co_qualname, error)
        return _compile_frame(fn, frame, options, dynamic.DynamicPolicy(False, None, honour_marks=False))


def _compile_frame(fn, frame: Frame, options: CompileOptions, policy=None) -> cache.CacheEntry:
    code = fn.__code__
    if bytecode_log.isEnabledFor(10):
        bytecode_log.debug("%s\n%s\nnormalised:\n%r", _location(code), disassemble(code), decode(code))
    output = OutputGraph(code.co_name, policy or options.policy(code))
    tracer = InliningTranslator(code, frame, output)
    try:
        with output.held_fake_mode():
            returned = tracer.run()
        try:
            graph_module, plan = output.finish(returned)
        except Unsupported as error:  # e.g. returning a function made inside: name the return
            lineno = tracer.current.lineno if tracer.current else code.co_firstlineno
            error.locate(code.co_filename, lineno, linecache.getline(code.co_filename, lineno or 0))
            raise
    finally:  # the tracer switches grad mode as the code does (with blocks); undo that here
        torch._C._set_grad_enabled(output.initial_grad_mode)
    compiled = None
    if graph_module is not None:
        if graph_log.isEnabledFor(10):  # printing a big graph costs as much as capturing it
            graph_log.debug("captured graph of %s (%s):\n%s", code.co_qualname, _location(code),
                            graph_module.print_readable(print_output=False))
        with output.backend_context():
            compiled = lookup_backend(options.backend)(graph_module, list(output.example_inputs))
    output.guards.extend(output.shape_guards())  # after the backend, which may have added some
    output.guards.compile()
    if output.effects_plan is not None:
        graph_log.debug("side effects of %s, replayed after the graph:\n%r", code.co_qualname, output.effects_plan)
    guards_log.debug("guards of %s (%s):\n%r", code.co_qualname, _location(code), output.guards)
    records.RECORDS.append(records.CompiledGraphRecord(
        code.co_qualname, _location(code), graph_module, repr(output.guards)))
    return cache.CacheEntry(output.guards, compiled, output.input_sources, plan, graph_module, output.effects_plan)


def _fall_back(fn, code_cache: cache.CodeCache, reason: str, error: Unsupported | None = None) -> None:
    """Remember that this code runs eagerly, and say so once."""
    code = fn.__code__
    code_cache.fallback_reason = reason
    records.RECORDS.append(records.CompiledGraphRecord(code.co_qualname, _location(code), reason=reason))
    graph_breaks_log.debug("%s (%s) runs eagerly: %s", code.co_qualname, _location(code), reason)
    hint = f"\n  hint: {error.hint}" if error is not None else ""
    warnings.warn(f"kiln: running {code.co_qualname} eagerly: {reason}{hint}", FallbackWarning, stacklevel=4)  # the user's call


def reset() -> None:
    """Forget every compiled entry and fallback decision."""
    cache.clear()
    records.RECORDS.clear()
    breaks.clear()
    distributed.clear()
    dynamic.clear()
    clear_resume_cache()


def disable(fn: Callable) -> Callable:
    """Never capture `fn`: compiled on its own it runs eagerly; called from a compiled
    function, the graph breaks around the call."""
    fn = _as_function(fn)
    fn._kiln_disable = True
    return fn


def allow_in_graph(fn: Callable) -> Callable:
    """Put calls to `fn` into the graph as one node (run on fake tensors while tracing)
    instead of tracing its body. `fn` must take and return tensors and have no side effects."""
    fn = _as_function(fn)
    fn._kiln_allow_in_graph = True
    return fn


def _as_function(fn: Callable) -> types.FunctionType:
    """`fn` itself when it is a plain function (marked in place), else a function wrapping it."""
    if isinstance(fn, types.FunctionType):
        return fn

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)
    return wrapper
