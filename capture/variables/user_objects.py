"""Classes (PythonTypeVariable), instances of plain Python classes (dataclasses included),
namedtuples, and class attributes.

An instance passed in is read through its source: `obj.w` is `L['obj'].w`, guarded like any
value read. A class attribute (method, staticmethod, classmethod, property, constant) is read
from the `__dict__` of the class in the MRO that defines it, guarded by identity, with guards
that no earlier class in the MRO (and for non-data attributes, not the instance) shadows it.
Objects built inside the function (a dataclass, a class with a Python `__init__`) live here as
a dict of symbolic attributes and are rebuilt when returned.
"""
from __future__ import annotations

import abc
import collections
import enum
import inspect
import operator
import types

import torch

from ..exc import TorchOpError, Unsupported
from ..guards import Guard
from ..sources import AttrSource, GetItemSource, Source
from .base import VariableTracker
from .collectives import is_distributed_value
from .constant_values import wrap_constant
from .containers import TupleVariable
from .dicts import ConstDictVariable, DictStorageVariable
from .functions import PURE_BUILTINS, SEQUENCE_BUILTINS, BuiltinVariable, UserFunctionVariable, special_call
from .grad_mode import CONTEXT_HINT
from .nested import CellVariable, find_cell
from .nn_module import BoundMethodVariable, NNModuleVariable

HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class written in Python
PLAIN_METACLASSES = (type, abc.ABCMeta)


def is_user_class(cls: type) -> bool:
    """A class written in Python, outside torch, with a plain metaclass."""
    if type(cls) not in PLAIN_METACLASSES or cls is object:
        return False
    for klass in cls.__mro__:
        if klass is object:
            continue
        if not klass.__flags__ & HEAPTYPE or klass.__module__.split(".")[0] == "torch":
            return False
    return cls.__getattribute__ is object.__getattribute__


def is_user_object(value) -> bool:
    cls = type(value)
    return (is_user_class(cls) and not isinstance(value, (tuple, list, dict, set, BaseException))
            and (hasattr(value, "__dict__") or any("__slots__" in klass.__dict__ for klass in cls.__mro__)))


def is_namedtuple_class(cls: type) -> bool:
    return isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields") and hasattr(cls, "_make")


def _mro_dict_source(cls_source: Source, index: int) -> Source:
    klass = cls_source if index == 0 else GetItemSource(AttrSource(cls_source, "__mro__"), index)
    return AttrSource(klass, "__dict__")


def find_class_attribute(tx, cls: type, cls_source: Source | None, name: str):
    """(descriptor, its source) for `name` found statically in cls's MRO, or (None, None);
    guards that the classes before the defining one do not define it."""
    for index, klass in enumerate(cls.__mro__):
        if name in klass.__dict__:
            _guard_absent(tx, cls, cls_source, name, index)
            if klass is object or cls_source is None:
                return klass.__dict__[name], None
            return klass.__dict__[name], GetItemSource(_mro_dict_source(cls_source, index), name)
    _guard_absent(tx, cls, cls_source, name, len(cls.__mro__))
    return None, None


def _guard_absent(tx, cls: type, cls_source: Source | None, name: str, stop: int) -> None:
    if cls_source is None:
        return
    for index in range(stop):
        if cls.__mro__[index] is not object:  # object's own dict cannot change
            tx.output.guards.add(Guard(_mro_dict_source(cls_source, index), "NOT_IN", name, noun="class"))


def is_data_descriptor(descriptor) -> bool:
    return hasattr(type(descriptor), "__set__") or hasattr(type(descriptor), "__delete__")


def bind_class_attribute(tx, owner: VariableTracker | None, cls_variable: VariableTracker, name: str,
                         descriptor, source: Source | None) -> VariableTracker:
    """The value of `owner.name` (owner None: `cls.name`) for a descriptor found in the class."""
    cls_name = getattr(cls_variable.as_python_constant(), "__qualname__", "?")
    if isinstance(descriptor, (types.FunctionType, staticmethod, classmethod, property)):
        if source is None:
            raise Unsupported(f"class attribute {cls_name}.{name} of a class with no source")
        tx.output.guards.add(Guard(source, "ID_MATCH", descriptor, noun="class attribute"))
    if isinstance(descriptor, types.FunctionType):
        function = UserFunctionVariable(descriptor, source)
        return function if owner is None else BoundMethodVariable(owner, function)
    if isinstance(descriptor, staticmethod):
        return UserFunctionVariable(descriptor.__func__, AttrSource(source, "__func__"))
    if isinstance(descriptor, classmethod):
        return BoundMethodVariable(cls_variable, UserFunctionVariable(descriptor.__func__, AttrSource(source, "__func__")))
    if isinstance(descriptor, property):
        if owner is None:
            raise Unsupported(f"reading property object {cls_name}.{name} from the class")
        if descriptor.fget is None:
            raise TorchOpError(f"property {name}", AttributeError(f"property {name!r} has no getter"))
        return UserFunctionVariable(descriptor.fget, AttrSource(source, "fget")).call(tx, [owner], {})
    if source is None:
        raise Unsupported(f"class attribute {cls_name}.{name} of a class with no source")
    if is_data_descriptor(descriptor) or hasattr(type(descriptor), "__get__"):
        raise Unsupported(f"descriptor {cls_name}.{name} of type {type(descriptor).__name__}")
    return tx.wrap(descriptor, source)


class PythonTypeVariable(VariableTracker):
    """A class such as torch.Tensor, usable as isinstance()'s second argument."""

    def __init__(self, value: type, source=None):
        super().__init__(source)
        self.value = value

    def as_python_constant(self):
        return self.value

    def python_type(self) -> type:
        return type(self.value)

    def var_getattr(self, tx, name: str) -> VariableTracker:
        return class_getattr(tx, self, name)

    def call(self, tx, args, kwargs) -> VariableTracker:
        if special_call(self.value) is not None or self.value in PURE_BUILTINS or self.value in SEQUENCE_BUILTINS:
            return BuiltinVariable(self.value).call(tx, args, kwargs)
        if is_namedtuple_class(self.value):
            return construct_namedtuple(tx, self, args, kwargs)
        if is_user_class(self.value):
            return construct_user_object(tx, self, args, kwargs)
        if hasattr(self.value, "__enter__"):  # user classes are constructed above
            raise Unsupported(f"context manager {self.value.__module__}.{self.value.__qualname__}", hint=CONTEXT_HINT)
        return super().call(tx, args, kwargs)

    def __repr__(self) -> str:
        return f"PythonTypeVariable({self.value.__name__})"


def class_variable_of(cls: type, cls_source: Source | None) -> VariableTracker:
    return PythonTypeVariable(cls, cls_source)  # its identity is guarded where the object was read


def class_getattr(tx, cls_variable, name: str) -> VariableTracker:
    """`Cls.name` for a user class read by the traced code (Cls.CONSTANT, Cls.static(), Cls.create())."""
    cls = cls_variable.value
    if name in ("__name__", "__qualname__", "__module__"):
        return wrap_constant(getattr(cls, name))
    if isinstance(cls, enum.EnumMeta) and name in cls.__members__:  # members cannot be rebound
        return wrap_constant(cls.__members__[name])
    if cls is object and name == "__setattr__":  # frozen dataclasses' __init__ assigns through it
        return BuiltinVariable(object.__setattr__)
    if is_distributed_value(getattr(cls, name, None)):  # dist.group.WORLD, dist.ReduceOp.MAX
        return tx.wrap(getattr(cls, name), AttrSource(cls_variable.source, name) if cls_variable.source else None)
    if issubclass(cls, torch.nn.Module) and cls_variable.source is not None:
        return _module_class_function(tx, cls_variable, name)
    if not is_user_class(cls) and not is_namedtuple_class(cls):
        raise Unsupported(f"attribute {name!r} of class {cls.__qualname__}")
    descriptor, source = find_class_attribute(tx, cls, cls_variable.source, name)
    if descriptor is None:
        raise TorchOpError(f"{cls.__qualname__}.{name}", AttributeError(name))
    return bind_class_attribute(tx, None, cls_variable, name, descriptor, source)


def _module_class_function(tx, cls_variable, name: str) -> VariableTracker:
    """`type(module).name` (transformers' checkpointing wrapper compares type(self).forward with
    itself): a Python function, guarded by identity as module methods are (nn_module.py)."""
    cls = cls_variable.value
    function = inspect.getattr_static(cls, name, None)
    if not isinstance(function, types.FunctionType):
        raise Unsupported(f"attribute {name!r} of class {cls.__qualname__}")
    source = AttrSource(cls_variable.source, name)
    tx.output.guards.add(Guard(source, "ID_MATCH", function, noun="method"))
    return UserFunctionVariable(function, source)


class UserObjectVariable(VariableTracker):
    """An instance of a user class: an input (source set, read through it) or built here."""

    def __init__(self, cls: type, source: Source | None = None, value=None, cls_source: Source | None = None):
        super().__init__(source)
        self.cls = cls
        self.value = value          # the real object, for inputs
        self.cls_source = cls_source if cls_source is not None else (
            AttrSource(source, "__class__") if source is not None else None)
        self.attrs: dict[str, VariableTracker] = {}  # attributes of an object built here
        self._storage: DictStorageVariable | None = None  # a dict subclass's items (dict's methods)

    def python_type(self) -> type:
        return self.cls

    def truth(self, tx) -> bool:
        if hasattr(self.cls, "__bool__"):
            raise Unsupported(f"truth value of a {self.cls.__qualname__} (defines __bool__)")
        if hasattr(self.cls, "__len__"):
            return self.length(tx) > 0
        return True

    def _instance_dict(self) -> dict:
        return getattr(self.value, "__dict__", {})  # objects with only __slots__ have none

    def _guard_not_in_instance(self, tx, name: str) -> None:
        if hasattr(self.value, "__dict__"):  # (a __slots__-only class cannot gain one)
            tx.output.guards.add(Guard(AttrSource(self.source, "__dict__"), "NOT_IN", name, noun="object"))

    def var_getattr(self, tx, name: str) -> VariableTracker:
        if name == "__class__":
            return class_variable_of(self.cls, self.cls_source)
        if name == "__dict__":
            raise Unsupported(f"reading __dict__ of a {self.cls.__qualname__}")
        written = self._written(tx, name)
        if written is not None:
            if written.value is None:
                raise TorchOpError(f"attribute {name!r}", AttributeError(name))
            return written.value
        descriptor, source = find_class_attribute(tx, self.cls, self.cls_source, name)
        if descriptor is not None and is_data_descriptor(descriptor):
            if isinstance(descriptor, property):
                return bind_class_attribute(tx, self, self._class_variable(), name, descriptor, source)
            if self.source is not None and type(descriptor).__name__ == "member_descriptor":  # __slots__
                try:
                    value = getattr(self.value, name)
                except AttributeError as error:  # an unset slot: eager raises it
                    raise TorchOpError(f"attribute {name!r}", error) from error
                return tx.wrap(value, AttrSource(self.source, name))
            raise Unsupported(f"attribute {self.cls.__qualname__}.{name} ({type(descriptor).__name__})")
        if self.source is None:
            if name in self.attrs:
                return self.attrs[name]
        elif name in self._instance_dict():
            return tx.wrap(self._instance_dict()[name], AttrSource(self.source, name))
        else:
            self._guard_not_in_instance(tx, name)
        if descriptor is not None:
            base = self._defined_by_dict(name)
            if base is not None:  # dict's own method: it acts on the items dict holds
                return tx.container_method(self.dict_storage(tx), name, base)
            return bind_class_attribute(tx, self, self._class_variable(), name, descriptor, source)
        if hasattr(self.cls, "__getattr__"):
            raise Unsupported(f"{self.cls.__qualname__}.__getattr__ (attribute {name!r})")
        raise TorchOpError(f"attribute {name!r}", AttributeError(f"{self.cls.__qualname__!r} object has no "
                                                                 f"attribute {name!r}"))

    def _written(self, tx, name: str):
        """The write to `name` made earlier in the trace on an object from outside, if any."""
        return tx.output.side_effects.read(self.value, name) if self.source is not None else None

    def has_attribute(self, tx, name: str) -> bool:
        written = self._written(tx, name)
        if written is not None:
            return written.value is not None
        if (self.source is None and name in self.attrs) or (self.source is not None and name in self._instance_dict()):
            self.var_getattr(tx, name)  # reading it guards it
            return True
        descriptor, _ = find_class_attribute(tx, self.cls, self.cls_source, name)
        if descriptor is not None:
            self.var_getattr(tx, name)
            return True
        if self.source is not None:
            self._guard_not_in_instance(tx, name)
        if hasattr(self.cls, "__getattr__"):
            raise Unsupported(f"hasattr on a {self.cls.__qualname__} with __getattr__")
        return False

    def call(self, tx, args, kwargs) -> VariableTracker:
        return self._call_special(tx, "__call__", args, "object is not callable", kwargs)

    # -- the protocols a Python class defines (Mapping & co): its methods, inlined --
    def _call_special(self, tx, name: str, args: list, missing: str, kwargs: dict | None = None) -> VariableTracker:
        descriptor, source = find_class_attribute(tx, self.cls, self.cls_source, name)
        if descriptor is None:
            raise TorchOpError(name, TypeError(f"{self.cls.__qualname__!r} {missing}"))
        if self._defined_by_dict(name) is not None and name in _STORAGE_SPECIALS:
            return _STORAGE_SPECIALS[name](tx, self.dict_storage(tx), args)
        return bind_class_attribute(tx, self, self._class_variable(), name, descriptor, source).call(
            tx, args, kwargs or {})

    def unpack(self, tx) -> list[VariableTracker]:
        if self._defined_by_dict("__iter__") is None:
            raise Unsupported(f"iterating over {self!r} (a Python __iter__)")
        return self.dict_storage(tx).unpack(tx)

    # -- dict subclasses read through a source (variables/user_dicts.py: is_dict_object) --
    def _defined_by_dict(self, name: str) -> type | None:
        """dict or OrderedDict when `name` comes from it (not from a Python class) and this is a
        dict subclass instance read through a source; else None."""
        if self.source is None or not isinstance(self.value, dict):
            return None
        owner = next((klass for klass in self.cls.__mro__ if name in klass.__dict__), None)
        return owner if owner in (dict, collections.OrderedDict) else None

    def dict_storage(self, tx) -> DictStorageVariable:
        if self._storage is None:
            self._storage = DictStorageVariable.of(tx, self.value, self.source)
        return self._storage

    def getitem(self, tx, index: VariableTracker) -> VariableTracker:
        return self._call_special(tx, "__getitem__", [index], "object is not subscriptable")

    def contains(self, tx, item: VariableTracker) -> bool:
        if find_class_attribute(tx, self.cls, self.cls_source, "__contains__")[0] is None:
            raise Unsupported(f"`in` on a {self.cls.__qualname__} without __contains__ (iterates it)")
        return _constant_answer(self._call_special(tx, "__contains__", [item], ""), bool, "__contains__")

    def length(self, tx) -> int:
        return _constant_answer(self._call_special(tx, "__len__", [], "has no len()"), int, "__len__")

    def _class_variable(self) -> VariableTracker:
        return class_variable_of(self.cls, self.cls_source)

    def store_attr(self, tx, name: str, value: VariableTracker) -> None:
        if self.cls.__setattr__ is not object.__setattr__:
            raise Unsupported(f"{self.cls.__qualname__}.__setattr__ (frozen dataclass or custom __setattr__)")
        if self.source is not None:  # an object from outside: a side effect, replayed after the graph
            self._check_plain_attribute(tx, name)
            tx.output.side_effects.write(self.value, self.source, name, value, owner=self)
            return
        self.raw_setattr(tx, name, value)

    def delete_attr(self, tx, name: str) -> None:
        if self.cls.__delattr__ is not object.__delattr__:
            raise Unsupported(f"{self.cls.__qualname__}.__delattr__")
        self._check_plain_attribute(tx, name)
        if self.source is None:
            if name not in self.attrs:
                raise TorchOpError(f"del .{name}", AttributeError(name))
            del self.attrs[name]
            return
        written = self._written(tx, name)
        if written is None:
            if name not in self._instance_dict():
                raise TorchOpError(f"del .{name}", AttributeError(name))
            tx.output.guards.add(Guard(AttrSource(self.source, "__dict__"), "HAS_KEY", name, noun="object"))
        elif written.value is None:
            raise TorchOpError(f"del .{name}", AttributeError(name))
        tx.output.side_effects.write(self.value, self.source, name, None, owner=self)

    def _check_plain_attribute(self, tx, name: str) -> None:
        descriptor, _ = find_class_attribute(tx, self.cls, self.cls_source, name)
        if descriptor is not None and is_data_descriptor(descriptor):
            raise Unsupported(f"assignment through descriptor {self.cls.__qualname__}.{name} "
                              f"(a property or descriptor)")
        if not hasattr(self.value, "__dict__") and self.source is not None:
            raise Unsupported(f"setting {self.cls.__qualname__}.{name} on an object with __slots__ only")

    def raw_setattr(self, tx, name: str, value: VariableTracker) -> None:
        """object.__setattr__: what frozen dataclasses' __init__ uses."""
        if self.source is not None:
            raise Unsupported("object.__setattr__ on an object from outside the function")
        descriptor, _ = find_class_attribute(tx, self.cls, self.cls_source, name)
        if descriptor is not None and is_data_descriptor(descriptor):
            raise Unsupported(f"assignment through descriptor {self.cls.__qualname__}.{name}")
        self.attrs[name] = value

    def __repr__(self) -> str:
        where = self.source.name() if self.source is not None else "built here"
        return f"UserObjectVariable({self.cls.__qualname__}, {where})"


# dict's own special methods on a dict subclass instance: answered from its items.
_STORAGE_SPECIALS = {
    "__getitem__": lambda tx, storage, args: storage.getitem(tx, args[0]),
    "__contains__": lambda tx, storage, args: wrap_constant(storage.contains(tx, args[0])),
    "__len__": lambda tx, storage, args: wrap_constant(storage.length(tx)),
}


def _constant_answer(answer: VariableTracker, kind: type, method: str):
    """What `in` and len() make of a Python __contains__/__len__'s result (bool(), index())."""
    if not answer.is_python_constant():
        raise Unsupported(f"{method} returned {answer!r}, not a constant")
    value = answer.as_python_constant()
    try:
        result = bool(value) if kind is bool else operator.index(value)
    except TypeError as error:
        raise TorchOpError(method, error) from error
    if kind is int and result < 0:
        raise TorchOpError(method, ValueError("__len__() should return >= 0"))
    return result


def construct_user_object(tx, cls_variable, args, kwargs) -> VariableTracker:
    """`Cls(...)` for a plain class: a new object whose Python __init__ is inlined."""
    cls = cls_variable.value
    name = cls.__qualname__
    if cls_variable.source is None:
        raise Unsupported(f"constructing {name}, a class with no source")
    if cls.__new__ is not object.__new__:
        raise Unsupported(f"constructing {name}, which defines __new__")
    if any("__slots__" in klass.__dict__ for klass in cls.__mro__):
        raise Unsupported(f"constructing {name}, which has __slots__")
    if getattr(cls, "__abstractmethods__", None):
        raise TorchOpError(f"constructing {name}", TypeError(f"Can't instantiate abstract class {name}"))
    obj = UserObjectVariable(cls, cls_source=cls_variable.source)
    init, source = find_class_attribute(tx, cls, cls_variable.source, "__init__")
    if init is object.__init__:
        if args or kwargs:
            raise TorchOpError(f"constructing {name}", TypeError(f"{name}() takes no arguments"))
        return obj
    if not isinstance(init, types.FunctionType):
        raise Unsupported(f"constructing {name}: __init__ is not a Python function")
    bind_class_attribute(tx, obj, cls_variable, "__init__", init, source).call(tx, list(args), dict(kwargs))
    return obj


# -- namedtuples -----------------------------------------------------------------------------

class NamedTupleVariable(TupleVariable):
    """A namedtuple (or typing.NamedTuple) instance; `cls_source` names its class for guards."""

    def __init__(self, items, source=None, python_container=None, cls_source=None):
        super().__init__(items, source, python_container)
        self.cls_source = cls_source


def namedtuple_class_attribute(tx, owner, name: str) -> VariableTracker:
    cls = owner.python_container
    cls_source = getattr(owner, "cls_source", None)
    descriptor, source = find_class_attribute(tx, cls, cls_source, name)
    if descriptor is None:
        raise TorchOpError(f"attribute {name!r}", AttributeError(f"{cls.__qualname__!r} has no attribute {name!r}"))
    return bind_class_attribute(tx, owner, class_variable_of(cls, cls_source), name, descriptor, source)


def construct_namedtuple(tx, cls_variable, args, kwargs) -> VariableTracker:
    cls = cls_variable.value
    new = cls.__new__
    defining = next(klass for klass in cls.__mro__ if "__new__" in klass.__dict__)
    if "_make" not in defining.__dict__:
        raise Unsupported(f"constructing {cls.__qualname__}, a namedtuple subclass that defines __new__")
    if cls_variable.source is None:
        raise Unsupported(f"constructing {cls.__qualname__}, a class with no source")
    try:
        bound = inspect.signature(new).bind(None, *args, **kwargs)
    except TypeError as error:
        raise TorchOpError(f"constructing {cls.__qualname__}", error) from error
    items = []
    for field in cls._fields:
        if field in bound.arguments:
            items.append(bound.arguments[field])
        else:
            items.append(tx.wrap(cls._field_defaults[field],
                                 GetItemSource(AttrSource(cls_variable.source, "_field_defaults"), field)))
    return NamedTupleVariable(items, python_container=cls, cls_source=cls_variable.source)


# -- super() ---------------------------------------------------------------------------------

class _NoOpInit(VariableTracker):
    """object.__init__ reached through super(): does nothing (with no arguments)."""

    def call(self, tx, args, kwargs) -> VariableTracker:
        if args or kwargs:
            raise TorchOpError("object.__init__", TypeError("object.__init__() takes exactly one argument"))
        return wrap_constant(None)


def _type_and_source(obj: VariableTracker) -> tuple[type, Source | None]:
    if isinstance(obj, UserObjectVariable):
        return obj.cls, obj.cls_source
    if isinstance(obj, NNModuleVariable):
        return type(obj.module), AttrSource(obj.source, "__class__") if obj.source is not None else None
    if isinstance(obj, NamedTupleVariable):
        return obj.python_container, obj.cls_source
    if isinstance(obj, ConstDictVariable) and getattr(obj, "cls_source", None) is not None:  # a dict subclass
        return obj.user_cls, obj.cls_source
    raise Unsupported(f"super() with self = {obj!r}")


class SuperVariable(VariableTracker):
    """super(cls, obj): attribute lookup starts after `cls` in type(obj).__mro__."""

    def __init__(self, cls_variable: VariableTracker, obj: VariableTracker):
        super().__init__(None)
        self.cls_variable, self.obj = cls_variable, obj

    def var_getattr(self, tx, name: str) -> VariableTracker:
        start = self.cls_variable.as_python_constant()
        obj_type, type_source = _type_and_source(self.obj)
        mro = obj_type.__mro__
        if start not in mro:
            raise TorchOpError("super()", TypeError("super(type, obj): obj must be an instance or subtype of type"))
        first = mro.index(start) + 1
        for index in range(first, len(mro)):
            klass = mro[index]
            if name not in klass.__dict__:
                continue
            if type_source is not None:
                for earlier in range(first, index):
                    if mro[earlier] is not object:
                        tx.output.guards.add(Guard(_mro_dict_source(type_source, earlier), "NOT_IN", name, noun="class"))
            descriptor = klass.__dict__[name]
            if descriptor is object.__init__:
                return _NoOpInit()
            if klass in (dict, collections.OrderedDict) and isinstance(self.obj, ConstDictVariable):
                return tx.container_method(self.obj, name, klass)  # dict's own method on the items
            if klass in (dict, collections.OrderedDict) and isinstance(self.obj, UserObjectVariable) and \
                    self.obj.source is not None and isinstance(self.obj.value, dict):
                return tx.container_method(self.obj.dict_storage(tx), name, klass)
            if klass is object or type_source is None:
                raise Unsupported(f"super().{name} resolving to {klass.__qualname__}")
            source = GetItemSource(_mro_dict_source(type_source, index), name)
            return bind_class_attribute(tx, self.obj, class_variable_of(obj_type, type_source), name, descriptor,
                                        source)
        raise TorchOpError(f"super().{name}", AttributeError(f"'super' object has no attribute {name!r}"))

    def __repr__(self) -> str:
        return f"SuperVariable({self.cls_variable!r}, {self.obj!r})"


def zero_argument_super(tx) -> SuperVariable:
    """super() inside a method (3.11 calls it with no arguments; it reads __class__ and self)."""
    code = tx.code
    if "__class__" not in code.co_freevars or code.co_argcount == 0:
        raise Unsupported("super() outside a method")
    cls_variable = find_cell(tx, "__class__").load(tx, "__class__")
    first_name = code.co_varnames[0]
    value = tx.locals.get(first_name)
    if isinstance(value, CellVariable):
        value = value.load(tx, first_name)
    elif value is not None:
        value = tx.resolve_local(first_name, value)
    if value is None:
        raise Unsupported("super() after its first argument was deleted")
    return SuperVariable(cls_variable, value)
