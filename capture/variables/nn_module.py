"""nn.Module instances: attribute access only (parameters/buffers become graph inputs)."""
from __future__ import annotations

import inspect
import types

import torch

from ..exc import TorchOpError, Unsupported
from ..guards import Guard
from ..sources import AttrSource, GetItemSource, ModuleEntrySource, Source
from .base import VariableTracker
from .constant import is_constant_value
from .constant_values import wrap_constant
from .containers import ListVariable, TupleVariable
from .functions import UserFunctionVariable
from .iterators import get_iter
from .tensor import TensorVariable


_CONTAINER_LENS = (torch.nn.Sequential.__len__, torch.nn.ModuleList.__len__, torch.nn.ModuleDict.__len__)


class NNModuleVariable(VariableTracker):
    def __init__(self, module: torch.nn.Module, source=None):
        super().__init__(source)
        self.module = module

    def python_type(self) -> type:
        return type(self.module)

    def var_getattr(self, tx, name: str) -> VariableTracker:
        written = tx.output.side_effects.read(self.module, name)  # set earlier in the trace
        if written is not None:
            if written.value is None:
                raise TorchOpError(f"module attribute {name!r}", AttributeError(name))
            return written.value
        if self.source is None:
            raise Unsupported(f"attribute {name!r} of a module with no source")
        module = self.module
        if name == "__class__":
            return tx.wrap(type(module), AttrSource(self.source, name))
        for table in ("_parameters", "_buffers", "_modules"):
            entries = module.__dict__.get(table, {})
            if name in entries:
                return tx.wrap(entries[name], ModuleEntrySource(self.source, name, table))
        if name in module.__dict__:
            return tx.wrap(module.__dict__[name], AttrSource(self.source, name))
        class_attribute = inspect.getattr_static(type(module), name, None)
        if name in MODULE_TREE_METHODS and class_attribute is getattr(torch.nn.Module, name):
            return ModuleTreeMethodVariable(self, name)
        if isinstance(class_attribute, types.FunctionType):
            return BoundMethodVariable(self, self._method(tx, name))
        if isinstance(class_attribute, staticmethod):  # self.helper(...) of a @staticmethod (T5's position buckets)
            return tx.wrap(class_attribute.__func__, AttrSource(AttrSource(self.source, "__class__"), name))
        if is_constant_value(class_attribute):
            return tx.wrap(getattr(module, name), AttrSource(self.source, name))
        raise Unsupported(f"module attribute {type(module).__name__}.{name}")

    def store_attr(self, tx, name: str, value: VariableTracker) -> None:
        """`self.name = value`, replayed with the module's own __setattr__ after the graph."""
        module, kind = self.module, type(self.module).__name__
        self._check_writable(name)
        if name in module._buffers and not (isinstance(value, TensorVariable) or
                                            (value.is_python_constant() and value.as_python_constant() is None)):
            raise TorchOpError(f"{kind}.{name} = ...", TypeError(f"cannot assign {value!r} as buffer {name!r}"))
        if isinstance(value, NNModuleVariable):
            raise Unsupported(f"assigning a module to {kind}.{name}")
        tx.output.side_effects.write(module, self.source, name, value, owner=self)

    def delete_attr(self, tx, name: str) -> None:
        module = self.module
        self._check_writable(name)
        written = tx.output.side_effects.read(module, name)
        if written is None:
            table = "_buffers" if name in module._buffers else "__dict__"
            if name not in getattr(module, table):
                raise TorchOpError(f"del .{name}", AttributeError(name))
            tx.output.guards.add(Guard(AttrSource(self.source, table), "HAS_KEY", name, noun="module"))
        elif written.value is None:
            raise TorchOpError(f"del .{name}", AttributeError(name))
        tx.output.side_effects.write(module, self.source, name, None, owner=self)

    def _check_writable(self, name: str) -> None:
        module, kind = self.module, type(self.module).__name__
        if self.source is None:
            raise Unsupported(f"setting attribute {name!r} of a module with no source")
        if (type(module).__setattr__ is not torch.nn.Module.__setattr__
                or type(module).__delattr__ is not torch.nn.Module.__delattr__):
            raise Unsupported(f"setting attribute {name!r} of {kind}, which defines __setattr__/__delattr__")
        if name in module._parameters or name in module._modules:
            raise Unsupported(f"assigning to {kind}.{name}, a registered parameter or submodule",
                              hint="parameters and submodules are graph inputs; change them outside the compiled function")
        if hasattr(type(inspect.getattr_static(type(module), name, None)), "__set__"):
            raise Unsupported(f"setting {kind}.{name}, a property or descriptor")

    def _method(self, tx, name: str) -> VariableTracker:
        function = inspect.getattr_static(type(self.module), name)
        source = AttrSource(AttrSource(self.source, "__class__"), name)
        if not isinstance(function, types.FunctionType):
            raise Unsupported(f"method {type(self.module).__name__}.{name} is not a Python function")
        tx.output.guards.add(Guard(source, "ID_MATCH", function, noun="method"))  # inlined: guard its identity
        return UserFunctionVariable(function, source)

    def _check_hooks(self, tx) -> None:
        from torch.nn.modules import module as module_globals
        for table in HOOK_TABLES:
            if getattr(self.module, table, None):
                raise Unsupported(f"call to {type(self.module).__name__} ({self.source.name()}) with {table} registered",
                                  hint="hooks are not traced; remove them or run without fullgraph=True")
            tx.output.guards.add(Guard(AttrSource(self.source, table), "LENGTH", 0, noun="module hooks"))
        for table in GLOBAL_HOOK_TABLES:
            if getattr(module_globals, table, None):
                raise Unsupported(f"call to {type(self.module).__name__} with global module hooks ({table})")

    def call(self, tx, args, kwargs) -> VariableTracker:
        if self.source is None:
            raise Unsupported(f"call to module {type(self.module).__name__} with no source")
        self._check_hooks(tx)
        return self._method(tx, "forward").call(tx, [self, *args], kwargs)

    def length(self, tx) -> int:
        """len(): ModuleList, Sequential and ModuleDict count _modules (guarded); another
        module's Python __len__ is inlined."""
        if self.source is None or not hasattr(type(self.module), "__len__"):
            raise Unsupported(f"len() of {type(self.module).__name__}")
        if type(self.module).__len__ in _CONTAINER_LENS:
            tx.output.guards.add(Guard(AttrSource(self.source, "_modules"), "LENGTH", len(self.module._modules)))
            return len(self.module._modules)
        return _constant(self._method(tx, "__len__").call(tx, [self], {}), int)

    def truth(self, tx) -> bool:
        """As Python takes it: __bool__, else len() > 0 (an empty ModuleList is false), else true."""
        if hasattr(type(self.module), "__bool__"):
            return bool(_constant(self._method(tx, "__bool__").call(tx, [self], {}), bool))
        return self.length(tx) > 0 if hasattr(type(self.module), "__len__") else True

    def unpack(self, tx) -> list[VariableTracker]:
        if not isinstance(self.module, (torch.nn.Sequential, torch.nn.ModuleList)):
            raise Unsupported(f"iterating over {type(self.module).__name__}")
        tx.output.guards.add(Guard(AttrSource(self.source, "_modules"), "LENGTH", len(self.module._modules)))
        return [tx.wrap(child, self._child_source(name)) for name, child in self.module._modules.items()]

    def getitem(self, tx, index: VariableTracker) -> VariableTracker:
        key = index.as_python_constant()
        if isinstance(key, slice) and type(self.module).__getitem__ in _SLICEABLE:
            return ModuleSliceVariable(type(self.module), self.unpack(tx)[key])
        if isinstance(self.module, (torch.nn.Sequential, torch.nn.ModuleList)) and isinstance(key, int):
            names = list(self.module._modules)
            tx.output.guards.add(Guard(AttrSource(self.source, "_modules"), "LENGTH", len(names)))
            return tx.wrap(self.module._modules[names[key]], self._child_source(names[key]))
        if isinstance(self.module, torch.nn.ModuleDict) and isinstance(key, str):
            return tx.wrap(self.module[key], self._child_source(key))
        raise Unsupported(f"indexing {type(self.module).__name__} with {key!r}")

    def _child_source(self, name: str) -> Source:
        return GetItemSource(AttrSource(self.source, "_modules"), name)

    def __repr__(self) -> str:
        return f"NNModuleVariable({type(self.module).__name__})"


def _constant(answer: VariableTracker, kind: type):
    if not answer.is_python_constant() or not isinstance(answer.as_python_constant(), kind):
        raise Unsupported(f"a module's __len__/__bool__ returned {answer!r}")
    return answer.as_python_constant()


_SLICEABLE = (torch.nn.Sequential.__getitem__, torch.nn.ModuleList.__getitem__)


class ModuleSliceVariable(VariableTracker):
    """`module_list[a:b]`: eager makes a new ModuleList (or Sequential) of the same children. Here
    it is those children, for iterating, len(), truth and indexing; any other use graph-breaks."""

    def __init__(self, cls: type, children: list[VariableTracker]):
        super().__init__(None)
        self.cls, self.children = cls, children

    def python_type(self) -> type:
        return self.cls

    def unpack(self, tx) -> list[VariableTracker]:
        return list(self.children)

    def length(self, tx) -> int:
        return len(self.children)

    def truth(self, tx) -> bool:
        return bool(self.children)

    def getitem(self, tx, index: VariableTracker) -> VariableTracker:
        key = index.as_python_constant()
        if isinstance(key, slice):
            return ModuleSliceVariable(self.cls, self.children[key])
        if not isinstance(key, int):
            raise Unsupported(f"indexing a {self.cls.__name__} slice with {key!r}")
        if not -len(self.children) <= key < len(self.children):
            raise TorchOpError(f"{self.cls.__name__}[{key}]", IndexError(f"index {key} is out of range"))
        return self.children[key]

    def __repr__(self) -> str:
        return f"ModuleSliceVariable({self.cls.__name__}, {len(self.children)} modules)"


HOOK_TABLES = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
GLOBAL_HOOK_TABLES = ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks",
                      "_global_backward_pre_hooks")


class BoundMethodVariable(VariableTracker):
    """`obj.method` for a user-defined method: calling it inlines the function with obj first."""

    def __init__(self, obj: VariableTracker, function: VariableTracker):
        super().__init__(None)
        self.obj, self.function = obj, function

    def call(self, tx, args, kwargs) -> VariableTracker:
        return self.function.call(tx, [self.obj, *args], kwargs)

    def var_getattr(self, tx, name: str) -> VariableTracker:
        if name == "__func__":
            return self.function
        if name == "__self__":
            return self.obj
        return super().var_getattr(tx, name)

    def __repr__(self) -> str:
        return f"BoundMethodVariable({self.function!r})"


# Walks of the module tree, answered statically (eager's generators keep a memo set of modules,
# which capture cannot hold symbolically): each submodule is read through its source, and each
# visited module's `_modules` keys are guarded, so a tree changed later recompiles.
MODULE_TREE_METHODS = frozenset({"modules", "named_modules", "children", "named_children"})


def _submodules(tx, variable: NNModuleVariable) -> list[tuple[str, NNModuleVariable]]:
    table = AttrSource(variable.source, "_modules")
    tx.output.guards.add(Guard(table, "KEYS", tuple(variable.module._modules), noun="module"))
    return [(name, tx.wrap(sub, AttrSource(variable.source, name) if name.isidentifier()
                           else GetItemSource(table, name)))
            for name, sub in variable.module._modules.items() if sub is not None]


def _named_modules(tx, variable, prefix: str, seen: set, out: list) -> None:
    if id(variable.module) in seen:
        return
    seen.add(id(variable.module))
    out.append((prefix, variable))
    for name, child in _submodules(tx, variable):
        _named_modules(tx, child, prefix + ("." if prefix else "") + name, seen, out)


class ModuleTreeMethodVariable(VariableTracker):
    """`module.modules` & co (nn.Module's own), waiting to be called: the call gives an iterator."""

    def __init__(self, owner: NNModuleVariable, name: str):
        super().__init__(None)
        self.owner, self.name = owner, name

    def call(self, tx, args, kwargs) -> VariableTracker:
        if args or kwargs:
            raise Unsupported(f"module.{self.name}() with arguments")
        if self.owner.source is None:
            raise Unsupported(f"module.{self.name}() of a module with no source")
        if self.name in ("modules", "named_modules"):
            named: list = []
            _named_modules(tx, self.owner, "", set(), named)
        else:
            seen, named = set(), []
            for name, child in _submodules(tx, self.owner):
                if id(child.module) not in seen:
                    seen.add(id(child.module))
                    named.append((name, child))
        items = [TupleVariable([wrap_constant(name), child]) if self.name.startswith("named") else child
                 for name, child in named]
        return get_iter(tx, ListVariable(items))

    def __repr__(self) -> str:
        return f"ModuleTreeMethodVariable({type(self.owner.module).__name__}.{self.name})"
