"""torch (and operator/math) modules and the functions found in them."""
from __future__ import annotations

import types

import torch

from ..exc import Unsupported
from ..guards import Guard
from ..sources import AttrSource
from .base import VariableTracker
from .constant_values import wrap_constant
from .grad_mode import GradModeClassVariable
from .tensor import TensorVariable

# Modules whose attributes may be looked up during capture.
ALLOWED_MODULE_ROOTS = ("torch", "math", "operator", "functools", "dataclasses", "collections")

# torch functions that change global state: tracing them would drop the side effect.
GLOBAL_STATE_FUNCTIONS = {
    torch.manual_seed, torch.seed, torch.set_grad_enabled, torch.set_default_dtype,
    torch.set_default_device, torch.set_printoptions, torch.use_deterministic_algorithms,
    torch.save, torch.load, torch.no_grad, torch.enable_grad, torch.inference_mode,
    torch.set_num_threads, torch.compile,
}


# torch.compiler.is_compiling(): true in the code capture traces (libraries take their
# compile-friendly paths there, e.g. transformers skips its ContextVar bookkeeping), false when the
# same code runs eagerly (between graphs, or on a fallback), as with TorchDynamo.
COMPILING_QUERIES = {torch.compiler.is_compiling, getattr(torch._utils, "is_compiling", None)} - {None}


def is_allowed_module(module: types.ModuleType) -> bool:
    return module.__name__.split(".")[0] in ALLOWED_MODULE_ROOTS


def is_torch_callable(value) -> bool:
    module = getattr(value, "__module__", None) or ""
    return callable(value) and not isinstance(value, type) and (
        module == "torch" or module.startswith("torch.") or module in ("_operator", "operator"))


class ModuleVariable(VariableTracker):
    """`torch`, `torch.nn.functional`, `math`, ...: only attribute lookup is allowed."""

    def __init__(self, module: types.ModuleType, source=None):
        super().__init__(source)
        self.module = module

    def as_python_constant(self):
        return self.module

    def var_getattr(self, tx, name: str) -> VariableTracker:
        if not hasattr(self.module, name):
            raise Unsupported(f"module {self.module.__name__} has no attribute {name!r}")
        # Attributes of these library modules are assumed stable: only the root is guarded.
        return tx.wrap(getattr(self.module, name), AttrSource(self.source, name) if self.source else None,
                       guard=False)

    def __repr__(self) -> str:
        return f"ModuleVariable({self.module.__name__})"


def _guard_query(tx, fn, args, kwargs, value) -> None:
    """A torch call that gave a constant with constant arguments read global state (fastpath
    enabled, autocast, default dtype...): guard that the same call still gives it."""
    try:
        constant_args = tuple(arg.as_python_constant() for arg in args)
        constant_kwargs = {key: arg.as_python_constant() for key, arg in kwargs.items()}
    except Unsupported:  # computed from tensors' metadata (guarded already)
        return
    expected = (fn, constant_args, tuple(constant_kwargs.items()), value)
    try:
        hash(expected)
    except TypeError:
        raise Unsupported(f"{_qualified_name(fn)}() with unhashable arguments gave a constant") from None
    tx.output.guards.add(Guard(None, "GLOBAL_QUERY", expected, noun="torch state"))


def _qualified_name(fn) -> str:
    module = getattr(fn, "__module__", None) or ""
    module = {"_operator": "operator", "torch._C._nn": "torch.nn.functional"}.get(module, module)
    return f"{module}.{getattr(fn, '__name__', repr(fn))}"


class TorchFunctionVariable(VariableTracker):
    """A torch.* / torch.nn.functional.* / operator.* callable, recorded as call_function."""

    def __init__(self, fn, source=None):
        super().__init__(source)
        self.fn = fn

    def as_python_constant(self):
        return self.fn

    def call(self, tx, args, kwargs) -> VariableTracker:
        if self.fn in GLOBAL_STATE_FUNCTIONS:
            raise Unsupported(f"call to {_qualified_name(self.fn)} (changes global state)")
        if self.fn is torch.is_grad_enabled:
            return wrap_constant(torch.is_grad_enabled())  # grad mode is always guarded
        if self.fn in COMPILING_QUERIES:  # traced code is being compiled, as under TorchDynamo
            return wrap_constant(True)
        if self.fn is torch._C._set_grad_enabled:
            GradModeClassVariable(torch.set_grad_enabled).call(tx, args, kwargs)
            return wrap_constant(None)
        if "out" in kwargs and not isinstance(kwargs["out"], TensorVariable):
            raise Unsupported(f"{_qualified_name(self.fn)}(..., out=<{kwargs['out']!r}>): "
                              "only a single tensor out= is supported")
        # In-place functions (torch.relu_, F.relu(inplace=True), out=) are ops in the graph
        # like any other; call_op returns the mutated argument's own variable.
        result = tx.output.call_op("call_function", self.fn, list(args), dict(kwargs))
        if (result.is_python_constant() and result.as_python_constant() is not None
                and getattr(self.fn, "__module__", None) not in ("_operator", "operator")):  # those are pure
            _guard_query(tx, self.fn, args, kwargs, result.as_python_constant())
        return result

    def __repr__(self) -> str:
        return f"TorchFunctionVariable({_qualified_name(self.fn)})"
