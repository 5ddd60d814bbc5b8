"""`with torch.autocast(device_type, dtype, enabled, cache_enabled):` blocks.

As TorchDynamo does, entering records `torch.amp.autocast_mode._enter_autocast(...)` in the graph and
leaving records `_exit_autocast(...)` of that node, so the back end traces the block's ops under
autocast (its casts become ATen ops); the tracer enters the real autocast meanwhile so fake tensors
get eager's dtypes. The arguments must be Python constants. A graph break inside the block is not
supported (the frame runs eagerly, with one warning): the resume function would have to re-enter it.
`OutputGraph.held_fake_mode` leaves whatever a failed trace left entered.
"""
from __future__ import annotations

import torch
from torch.amp.autocast_mode import _enter_autocast, _exit_autocast

from ..exc import TorchOpError, Unsupported
from .base import VariableTracker

AUTOCAST_CLASSES = (torch.autocast,)


class AutocastClassVariable(VariableTracker):
    """torch.autocast (torch.amp.autocast), not yet called."""

    def __init__(self, cls: type, source=None):
        super().__init__(source)
        self.cls = cls

    def as_python_constant(self):
        return self.cls

    def call(self, tx, args, kwargs) -> VariableTracker:
        try:
            values = [a.as_python_constant() for a in args]
            named = {k: v.as_python_constant() for k, v in kwargs.items()}
        except Unsupported:
            raise Unsupported("torch.autocast(...) with arguments that are not Python constants") from None
        try:
            real = self.cls(*values, **named)  # checks its arguments; changes nothing until entered
        except Exception as e:  # noqa: BLE001 - the user's own error, raised again by eager
            raise TorchOpError("torch.autocast()", e) from None
        return AutocastContextVariable(real.device, real.fast_dtype, real._enabled, real._cache_enabled)

    def __repr__(self) -> str:
        return "AutocastClassVariable(torch.autocast)"


class AutocastContextVariable(VariableTracker):
    """A torch.autocast object: `enter`/`exit` record the switch in the graph and make it in the tracer."""

    def __init__(self, device: str, dtype: torch.dtype, enabled: bool, cache_enabled: bool | None):
        super().__init__(None)
        self.args = (device, dtype, enabled, cache_enabled)
        self.node = None

    def enter(self, tx) -> None:
        self.node = tx.output.graph.call_function(_enter_autocast, self.args)
        self.node.meta["stack_trace"] = tx.output.location
        tx.output.autocast_entered.append(_enter_autocast(*self.args))

    def exit(self, tx) -> None:
        node = tx.output.graph.call_function(_exit_autocast, (self.node,))
        node.meta["stack_trace"] = tx.output.location
        _exit_autocast(tx.output.autocast_entered.pop())

    def call(self, tx, args, kwargs) -> VariableTracker:
        raise Unsupported("torch.autocast(...) used as a decorator inside a compiled function",
                          hint="decorate the function where it is defined instead")

    def __repr__(self) -> str:
        device, dtype, enabled, _ = self.args
        return f"AutocastContextVariable({device}, {dtype}, enabled={enabled})"
