"""Instances of plain user classes read from outside the function (inputs, globals, attributes).

Attribute reads go through the instance `__dict__` (each value wrapped and guarded under its
AttrSource) or the class (methods are inlined with the object first; constants are read
through the instance and guarded). Attribute writes and deletes are side effects, replayed
with setattr/delattr after the graph; later reads in the trace see them.
"""
from __future__ import annotations

import inspect
import types
from typing import Any

import torch

from ..exc import TorchOpError, Unsupported
from ..guards import Guard
from ..sources import AttrSource
from .base import VariableTracker
from .constant import is_constant_value

_HEAP_TYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: classes made by a `class` statement


def is_plain_object(value: Any) -> bool:
    """An instance of a Python-defined class with ordinary attribute access."""
    cls = type(value)
    return (bool(cls.__flags__ & _HEAP_TYPE) and hasattr(value, "__dict__")
            and cls.__getattribute__ is object.__getattribute__
            and not isinstance(value, (type, types.FunctionType, types.MethodType, types.ModuleType,
                                       torch.nn.Module, torch.Tensor, BaseException))
            and not cls.__module__.startswith("torch"))


class UserObjectVariable(VariableTracker):
    def __init__(self, value: Any, source=None):
        super().__init__(source)
        self.value = value

    def python_type(self) -> type:
        return type(self.value)

    def var_getattr(self, tx, name: str) -> VariableTracker:
        from .builder import wrap_value
        from .nn_module import BoundMethodVariable
        written = tx.output.side_effects.read(self.value, name)
        if written is not None:
            if written.value is None:
                raise TorchOpError(f"attribute {name!r}", AttributeError(name))
            return written.value
        if self.source is None:
            raise Unsupported(f"attribute {name!r} of an object with no source")
        cls = type(self.value)
        class_attribute = inspect.getattr_static(cls, name, None)
        if _is_data_descriptor(class_attribute):
            raise Unsupported(f"attribute {cls.__name__}.{name} is a property or descriptor")
        if name in self.value.__dict__:
            return wrap_value(tx, self.value.__dict__[name], AttrSource(self.source, name))
        if isinstance(class_attribute, types.FunctionType):
            method_source = AttrSource(AttrSource(self.source, "__class__"), name)
            tx.output.guards.add(Guard(method_source, "ID_MATCH", class_attribute, noun="method"))
            return BoundMethodVariable(self, wrap_value(tx, class_attribute, method_source))
        if is_constant_value(class_attribute):
            return wrap_value(tx, getattr(self.value, name), AttrSource(self.source, name))
        if class_attribute is None and not hasattr(cls, "__getattr__"):
            raise TorchOpError(f"attribute {name!r}", AttributeError(f"{cls.__name__!r} object has no attribute {name!r}"))
        raise Unsupported(f"attribute {cls.__name__}.{name} ({type(class_attribute).__name__})")

    def _check_writable(self, name: str) -> None:
        cls = type(self.value)
        if self.source is None:
            raise Unsupported(f"setting attribute {name!r} of an object with no source")
        if cls.__setattr__ is not object.__setattr__ or cls.__delattr__ is not object.__delattr__:
            raise Unsupported(f"setting attribute {name!r} of {cls.__name__}, which defines __setattr__/__delattr__")
        if _is_data_descriptor(inspect.getattr_static(cls, name, None)):
            raise Unsupported(f"setting {cls.__name__}.{name}, a property or descriptor")

    def store_attr(self, tx, name: str, value: VariableTracker) -> None:
        self._check_writable(name)
        tx.output.side_effects.write(self.value, self.source, name, value, owner=self)

    def delete_attr(self, tx, name: str) -> None:
        self._check_writable(name)
        written = tx.output.side_effects.read(self.value, name)
        if written is None:
            if name not in self.value.__dict__:
                raise TorchOpError(f"del .{name}", AttributeError(name))
            tx.output.guards.add(Guard(AttrSource(self.source, "__dict__"), "HAS_KEY", name, noun="object"))
        elif written.value is None:
            raise TorchOpError(f"del .{name}", AttributeError(name))
        tx.output.side_effects.write(self.value, self.source, name, None, owner=self)

    def __repr__(self) -> str:
        return f"UserObjectVariable({type(self.value).__name__})"


def _is_data_descriptor(attribute: Any) -> bool:
    return hasattr(type(attribute), "__set__") or hasattr(type(attribute), "__delete__")


def wrap_user_object(tx, value, source) -> UserObjectVariable:
    tx.output.guards.add(Guard(source, "TYPE_MATCH", type(value), noun="object"))
    return UserObjectVariable(value, source)
