"""Sources: where a value the traced function reads comes from.

A source names a value relative to the frame (locals L, globals G, closure
cells C) as a Python expression. Guards and the per-call input extractor are
generated from these expressions, so a source must always say how to fetch
the value again on a later call.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch


class Source:
    def expr(self) -> str:
        """A Python expression over L, G, C evaluating to the value."""
        raise NotImplementedError

    def name(self) -> str:
        """How a user would spell the value in the function's own code."""
        return self.expr()

    def placeholder_name(self) -> str:
        """A readable identifier for an fx placeholder fed from this source."""
        cleaned = "".join(ch if ch.isalnum() else "_" for ch in self.expr())
        return "_".join(part for part in cleaned.split("_") if part) + "_"

    def __repr__(self) -> str:
        return self.expr()


@dataclass(frozen=True, repr=False)
class LocalSource(Source):
    local_name: str

    def expr(self) -> str:
        return f"L[{self.local_name!r}]"

    def name(self) -> str:
        return self.local_name


@dataclass(frozen=True, repr=False)
class GlobalSource(Source):
    global_name: str

    def expr(self) -> str:
        return f"G[{self.global_name!r}]"

    def name(self) -> str:
        return self.global_name


@dataclass(frozen=True, repr=False)
class GlobalsDictSource(Source):
    """The frame's globals dict itself: the target of STORE_GLOBAL / DELETE_GLOBAL."""

    def expr(self) -> str:
        return "G"

    def name(self) -> str:
        return "globals()"


@dataclass(frozen=True, repr=False)
class BuiltinSource(Source):
    builtin_name: str

    def expr(self) -> str:
        return f"B[{self.builtin_name!r}]"

    def name(self) -> str:
        return self.builtin_name


@dataclass(frozen=True, repr=False)
class ClosureSource(Source):
    """Contents of free variable `var_name`, cell number `index` of the closure."""
    var_name: str
    index: int

    def expr(self) -> str:
        return f"C[{self.index}].cell_contents"

    def name(self) -> str:
        return self.var_name


@dataclass(frozen=True, repr=False)
class ClosureCellSource(Source):
    """Cell number `index` of the closure itself (the target of a replayed `nonlocal` write)."""
    index: int

    def expr(self) -> str:
        return f"C[{self.index}]"


@dataclass(frozen=True, repr=False)
class ImportSource(Source):
    """What `import name` (fromlist None: the top package) or `from name import ...` gives."""
    module_name: str
    fromlist: tuple | None

    def expr(self) -> str:
        return f"B['__import__']({self.module_name!r}, None, None, {self.fromlist!r}, 0)"

    def name(self) -> str:
        return self.module_name if self.fromlist else self.module_name.split(".")[0]


@dataclass(frozen=True, repr=False)
class AttrSource(Source):
    base: Source
    attr: str

    def expr(self) -> str:
        return f"{self.base.expr()}.{self.attr}"

    def name(self) -> str:
        return f"{self.base.name()}.{self.attr}"


@dataclass(frozen=True, repr=False)
class ModuleEntrySource(AttrSource):
    """`module.name` for a parameter, buffer or submodule, fetched from its table
    (`module._parameters['name']`): one dict read instead of nn.Module.__getattr__, which the
    guards and the input extractor would otherwise call for every parameter on every call."""
    table: str = "_parameters"

    def expr(self) -> str:
        return f"{self.base.expr()}.{self.table}[{self.attr!r}]"

    def placeholder_name(self) -> str:  # the same names as the attribute spelling gives
        return AttrSource(self.base, self.attr).placeholder_name()


@dataclass(frozen=True, repr=False)
class GetItemSource(Source):
    base: Source
    index: int | str

    def expr(self) -> str:
        return f"{self.base.expr()}[{self.index!r}]"

    def name(self) -> str:
        return f"{self.base.name()}[{self.index!r}]"


@dataclass(frozen=True, repr=False)
class TensorPropertySource(Source):
    """`base.size()[index]`, `base.stride()[index]` or `base.storage_offset()` (index None): the
    value of a symbol a tensor input's metadata binds (a SymInt graph input, dynamic.py)."""
    base: Source
    prop: str  # "size", "stride" or "storage_offset"
    index: int | None = None

    def expr(self) -> str:
        return f"{self.base.expr()}.{self.prop}()" + ("" if self.index is None else f"[{self.index}]")

    def name(self) -> str:
        return f"{self.base.name()}.{self.prop}()" + ("" if self.index is None else f"[{self.index}]")


@dataclass(frozen=True, repr=False)
class ContextVarValueSource(Source):
    """`var.get()` (or `var.get(default)`, default a constant's repr) of a contextvars.ContextVar:
    the value in the context of each call. It raises LookupError when unset with no default:
    a guard that raises fails."""
    base: Source
    default: str = ""

    def expr(self) -> str:
        return f"{self.base.expr()}.get({self.default})"

    def name(self) -> str:
        return f"{self.base.name()}.get({self.default})"


@dataclass(frozen=True, repr=False)
class DictStorageSource(Source):
    """The items of a dict subclass instance as dict itself holds them, whatever the class
    redefines: `dict.keys(obj)` (key None), or `dict.__getitem__(obj, key)`."""
    base: Source
    key: int | str | bool | None = None
    keys: bool = True

    def expr(self) -> str:
        if self.keys:
            return f"B['dict'].keys({self.base.expr()})"
        return f"B['dict'].__getitem__({self.base.expr()}, {self.key!r})"

    def name(self) -> str:
        return f"dict.keys({self.base.name()})" if self.keys else f"dict.__getitem__({self.base.name()}, {self.key!r})"


@dataclass(frozen=True, repr=False)
class FloatTensorSource(Source):
    """A float argument passed to the graph as a 0-dim float64 tensor (a lifted float, read back
    in the graph by `.item()`), as TorchDynamo passes one whose value varies between calls."""
    base: Source

    def expr(self) -> str:
        return f"as_float_tensor({self.base.expr()})"

    def name(self) -> str:
        return self.base.name()

    def placeholder_name(self) -> str:
        return self.base.placeholder_name()


def as_float_tensor(value: float) -> torch.Tensor:
    return torch.tensor(value, dtype=torch.float64)


# names a source expression may call, besides L, G, B, C
SOURCE_NAMESPACE = {"as_float_tensor": as_float_tensor}


@dataclass(frozen=True)
class Frame:
    """The values sources are evaluated against on one call."""
    L: dict
    G: dict
    B: dict
    C: tuple

    def fetch(self, source: Source):
        return fetcher(source)(self.L, self.G, self.B, self.C)


_FETCHERS: dict[str, Callable] = {}


def fetcher(source: Source) -> Callable:
    """`fetch(L, G, B, C) -> value`, compiled once per source expression (eval per call is slow)."""
    expr = source.expr()
    fetch = _FETCHERS.get(expr)
    if fetch is None:
        fetch = _FETCHERS[expr] = eval(compile(f"lambda L, G, B, C: {expr}", "<kiln source>", "eval"))
    return fetch
