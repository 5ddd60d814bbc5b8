"""Grad-mode context managers: torch.no_grad, torch.enable_grad, torch.set_grad_enabled.

They mirror the real classes step by step: `no_grad()`/`enable_grad()` change nothing until
entered; `set_grad_enabled(b)` switches at construction (so it also works as a plain call);
`__exit__` restores the mode seen at entry (construction, for set_grad_enabled). Each switch
goes through `OutputGraph.set_grad_mode`, which records `torch._C._set_grad_enabled` in the
graph, as TorchDynamo does, and switches the tracer's own mode so fake tensors get eager's
requires_grad. Functions decorated with `@torch.no_grad()` & co are recognised here
(`decorated_grad_mode`) and inlined inside the same switch (functions.call_decorated).
"""
from __future__ import annotations

import torch
import torch.utils._contextlib as torch_contextlib

from ..exc import TorchOpError, Unsupported
from .base import VariableTracker
from .constant_values import wrap_constant

GRAD_MODE_CLASSES = (torch.no_grad, torch.enable_grad, torch.set_grad_enabled)
CONTEXT_HINT = ("only torch.no_grad(), torch.enable_grad(), torch.set_grad_enabled(b) and torch.autocast(...) are traced; "
                "move other `with` blocks out of the compiled function")


class GradModeClassVariable(VariableTracker):
    """One of GRAD_MODE_CLASSES, not yet called."""

    def __init__(self, cls: type, source=None):
        super().__init__(source)
        self.cls = cls

    def as_python_constant(self):
        return self.cls

    def call(self, tx, args, kwargs) -> VariableTracker:
        if self.cls is torch.set_grad_enabled:
            values = [*args, *kwargs.values()]
            if len(values) != 1 or (kwargs and "mode" not in kwargs):
                raise TorchOpError("torch.set_grad_enabled()", TypeError("set_grad_enabled() takes one argument, mode"))
            mode = values[0]
            if not (mode.is_python_constant() and isinstance(mode.as_python_constant(), bool)):
                raise Unsupported(f"torch.set_grad_enabled({mode!r}): the mode must be a Python bool")
            context = GradModeContextVariable(mode.as_python_constant(), set_on_construction=True)
            context.prev = torch.is_grad_enabled()
            tx.output.set_grad_mode(context.mode)
            return context
        if args or kwargs:
            raise TorchOpError(f"torch.{self.cls.__name__}()", TypeError("takes no arguments"))
        return GradModeContextVariable(self.cls is torch.enable_grad)

    def __repr__(self) -> str:
        return f"GradModeClassVariable(torch.{self.cls.__name__})"


class GradModeContextVariable(VariableTracker):
    """An instance of a grad-mode context manager."""

    def __init__(self, mode: bool, set_on_construction: bool = False):
        super().__init__(None)
        self.mode = mode
        self.set_on_construction = set_on_construction
        self.prev: bool | None = None

    def enter(self, tx) -> None:
        if not self.set_on_construction:
            self.prev = torch.is_grad_enabled()
        tx.output.set_grad_mode(self.mode)

    def exit(self, tx) -> None:
        tx.output.set_grad_mode(self.prev)

    def call(self, tx, args, kwargs) -> VariableTracker:
        raise Unsupported(f"using {self!r} as a decorator inside a compiled function",
                          hint="decorate the function where it is defined instead")

    def __repr__(self) -> str:
        return f"GradModeContextVariable(grad {'enabled' if self.mode else 'disabled'})"


class WithExitVariable(VariableTracker):
    """The bound `__exit__` BEFORE_WITH leaves on the stack; the normal exit path calls it
    with (None, None, None)."""

    def __init__(self, context: GradModeContextVariable, block):
        super().__init__(None)
        self.context, self.block = context, block

    def call(self, tx, args, kwargs) -> VariableTracker:
        self.context.exit(tx)
        if tx.block_stack and tx.block_stack[-1] is self.block:
            tx.block_stack.pop()
        return wrap_constant(None)

    def __repr__(self) -> str:
        return f"WithExitVariable({self.context!r})"


def decorated_grad_mode(fn) -> tuple[bool, object] | None:
    """(mode, wrapped function) if `fn` is `@torch.no_grad()` / `@torch.enable_grad()` /
    `@torch.set_grad_enabled(b)` applied to a plain function, else None."""
    code = getattr(fn, "__code__", None)
    if code is None or code.co_name != "decorate_context" or code.co_filename != torch_contextlib.__file__:
        return None
    cells = dict(zip(code.co_freevars, (cell.cell_contents for cell in fn.__closure__ or ())))
    factory, inner = cells.get("ctx_factory"), cells.get("func")
    context = getattr(factory, "__self__", None)
    if type(context) not in GRAD_MODE_CLASSES or getattr(factory, "__name__", "") != "clone":
        return None
    mode = context.mode if isinstance(context, torch.set_grad_enabled) else isinstance(context, torch.enable_grad)
    return mode, inner
