"""Functions made inside the traced code: nested `def`s and lambdas (with their cells), and
`functools.partial` objects, made inside or passed in.

A nested function never exists as a real Python object during capture: it is its code object
plus symbolic defaults, keyword defaults and closure cells, and calling it inlines the code.
"""
from __future__ import annotations

import functools
import types

from ..exc import TorchOpError, Unsupported
from ..sources import AttrSource, ClosureCellSource
from .base import VariableTracker
from .constant_values import wrap_constant
from .containers import TupleVariable
from .dicts import ConstDictVariable


class CodeVariable(VariableTracker):
    """A code object: loaded by LOAD_CONST (about to become a function by MAKE_FUNCTION), or a
    function's __code__ (guarded by identity). Code objects are immutable: co_* reads are constants."""

    def __init__(self, code: types.CodeType, source=None):
        super().__init__(source)
        self.code = code

    def as_python_constant(self):
        return self.code

    def python_type(self) -> type:
        return types.CodeType

    def var_getattr(self, tx, name: str) -> VariableTracker:
        if not name.startswith("co_") or name in ("co_lines", "co_positions", "co_consts"):
            raise Unsupported(f"code object attribute {name!r}")
        return wrap_constant(getattr(self.code, name))

    def __repr__(self) -> str:
        return f"CodeVariable({self.code.co_qualname})"


class CellVariable(VariableTracker):
    """A closure cell. Cells made in the traced code hold a symbolic value; a cell of the
    compiled function's own closure (or an inlined callee's) is read through its source."""

    EMPTY = object()

    def __init__(self, contents=EMPTY, *, real_cell=None, source=None):
        super().__init__(source)
        self.contents = contents
        self.real_cell = real_cell

    def load(self, tx, name: str) -> VariableTracker:
        if self.real_cell is not None:
            written = tx.output.side_effects.read(self.real_cell, "cell_contents")  # nonlocal write earlier
            if written is not None:
                if written.value is None:  # deleted earlier in the trace
                    raise Unsupported(f"free variable {name!r} read after `del`")
                return written.value
            try:
                value = self.real_cell.cell_contents
            except ValueError:
                raise Unsupported(f"free variable {name!r} read before assignment") from None
            return tx.wrap(value, self.source)
        if self.contents is CellVariable.EMPTY:
            raise Unsupported(f"variable {name!r} read before assignment (closure cell is empty)")
        return tx.resolve_local(name, self.contents)

    def cell_source(self):
        """The source of the real cell object itself (self.source reads its contents)."""
        return self.source.base if isinstance(self.source, AttrSource) else ClosureCellSource(self.source.index)

    def store(self, tx, name: str, value: VariableTracker) -> None:
        if self.real_cell is not None:  # `nonlocal x; x = ...` on a cell from outside: a side effect
            tx.output.side_effects.write(self.real_cell, self.cell_source(), "cell_contents", value)
            return
        self.contents = value

    def delete(self, tx, name: str) -> None:
        """`del name` of a cell variable: unbound afterwards (a real cell's deletion is replayed)."""
        self.load(tx, name)  # (deleting an unbound variable raises: capture leaves that to eager)
        if self.real_cell is not None:
            tx.output.side_effects.write(self.real_cell, self.cell_source(), "cell_contents", None)
            return
        self.contents = CellVariable.EMPTY

    def __repr__(self) -> str:
        return f"CellVariable({'real' if self.real_cell is not None else self.contents!r})"


def find_cell(tx, name: str) -> CellVariable:
    """The cell behind `name` in `tx`'s frame: made by MAKE_CELL, or one of its closure's."""
    value = tx.locals.get(name)
    if isinstance(value, CellVariable):
        return value
    if name in tx.code.co_freevars:
        index = tx.code.co_freevars.index(name)
        cell = tx.closure[index]
        if isinstance(cell, CellVariable):
            return cell
        return CellVariable(real_cell=cell, source=tx.closure_source(name, index))
    raise Unsupported(f"cell variable {name!r} used before its cell was made")


class NestedFunctionVariable(VariableTracker):
    """A function made by MAKE_FUNCTION in the traced code: calls are inlined."""

    def __init__(self, code: types.CodeType, defaults, kwdefaults, closure: tuple, definer):
        super().__init__(None)
        self.code = code
        self.defaults = defaults        # TupleVariable or None
        self.kwdefaults = kwdefaults    # ConstDictVariable or None
        self.closure = closure          # tuple of CellVariable
        self.f_globals = definer.f_globals
        self.global_source = definer.global_source

    def python_type(self) -> type:
        return types.FunctionType

    def truth(self, tx) -> bool:
        return True

    def var_getattr(self, tx, name: str) -> VariableTracker:
        if name in ("__name__", "__qualname__"):
            return wrap_constant(getattr(self.code, "co_" + name.strip("_")))
        if name == "__code__":  # a constant of the defining code, which is guarded already
            return CodeVariable(self.code)
        if name == "__defaults__":
            return self.defaults if self.defaults is not None else wrap_constant(None)
        if name == "__kwdefaults__":
            return self.kwdefaults if self.kwdefaults is not None else wrap_constant(None)
        raise Unsupported(f"attribute {name!r} of nested function {self.code.co_qualname}")

    def call(self, tx, args, kwargs) -> VariableTracker:
        return tx.inline(self, list(args), dict(kwargs))

    def __repr__(self) -> str:
        return f"NestedFunctionVariable({self.code.co_qualname})"


class PartialVariable(VariableTracker):
    """functools.partial(func, *args, **keywords): calls prepend the stored arguments."""

    def __init__(self, func: VariableTracker, args: list, keywords, source=None):
        super().__init__(source)
        self.func, self.args, self.keywords = func, list(args), keywords  # keywords: ConstDictVariable

    def python_type(self) -> type:
        return functools.partial

    def truth(self, tx) -> bool:
        return True

    def call(self, tx, args, kwargs) -> VariableTracker:
        stored = {key: self.keywords.value_of(tx, key) for key in self.keywords.items}
        return self.func.call(tx, [*self.args, *args], {**stored, **kwargs})

    def var_getattr(self, tx, name: str) -> VariableTracker:
        if name == "func":
            return self.func
        if name == "args":
            return TupleVariable(self.args)
        if name == "keywords":
            return self.keywords
        raise Unsupported(f"attribute {name!r} of functools.partial")

    def __repr__(self) -> str:
        return f"PartialVariable({self.func!r}, {len(self.args)} args)"


def make_partial(tx, args, kwargs) -> VariableTracker:
    if not args:
        raise TorchOpError("functools.partial()", TypeError("partial() needs a callable"))
    func, *stored = args
    if isinstance(func, PartialVariable):  # partial(partial(f, a), b) flattens, as functools does
        keywords = ConstDictVariable({**{k: func.keywords.value_of(tx, k) for k in func.keywords.items}, **kwargs})
        return PartialVariable(func.func, [*func.args, *stored], keywords)
    return PartialVariable(func, stored, ConstDictVariable(dict(kwargs)))
