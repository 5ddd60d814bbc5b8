"""nn.Module instances: attribute access only (parameters/buffers become graph inputs)."""
from __future__ import annotations

import torch

from ..exc import Unsupported
from ..sources import AttrSource
from .base import VariableTracker


class NNModuleVariable(VariableTracker):
    def __init__(self, module: torch.nn.Module, source=None):
        super().__init__(source)
        self.module = module

    def python_type(self) -> type:
        return type(self.module)

    def var_getattr(self, tx, name: str) -> VariableTracker:
        from .builder import wrap_value
        if self.source is None:
            raise Unsupported(f"attribute {name!r} of a module with no source")
        module = self.module
        for table in ("_parameters", "_buffers", "_modules"):
            entries = module.__dict__.get(table, {})
            if name in entries:
                return wrap_value(tx, entries[name], AttrSource(self.source, name))
        if name in module.__dict__:
            return wrap_value(tx, module.__dict__[name], AttrSource(self.source, name))
        class_attribute = getattr(type(module), name, None)
        if callable(class_attribute):
            raise Unsupported(f"method {type(module).__name__}.{name} of a module (inlining is not supported yet)")
        raise Unsupported(f"module attribute {type(module).__name__}.{name}")

    def call(self, tx, args, kwargs) -> VariableTracker:
        raise Unsupported(f"call to submodule {type(self.module).__name__} (inlining is not supported yet)",
                          hint="compile the submodule itself, or run without fullgraph=True")

    def __repr__(self) -> str:
        return f"NNModuleVariable({type(self.module).__name__})"
