"""How generated code finds each value it needs: small frozen descriptions the tracer builds.

A break entry's stack and locals are described by `StackItem`s:
  GraphOutput(i)   the i-th output of the compiled graph
  Constant(v)      an object baked into the generated code
  Local(name)      a parameter of the generated function (the tracer picks the parameters)
  Build(kind, xs)  a fresh tuple or list of other values
  Call(fn, args)   fn(*args), for reconstructing objects or replaying side effects
  Null()           a NULL stack slot (the method-call marker)
  WithExit(ctx)    the `__exit__` of an active `with ctx:` block (re-entered, never passed)
A resume function's stack is described only by `SlotKind`s: what its prologue pushes.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Union


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


@dataclass(frozen=True)
class GraphOutput:
    index: int

    def __repr__(self) -> str:
        return f"GraphOutput({self.index})"


@dataclass(frozen=True, eq=False)
class Constant:
    value: Any  # compared by identity: tensors and lists must not be compared elementwise

    def __repr__(self) -> str:
        return f"Constant({_short(self.value)})"


@dataclass(frozen=True)
class Local:
    name: str

    def __repr__(self) -> str:
        return f"Local({self.name})"


@dataclass(frozen=True)
class Build:
    kind: str                      # "tuple" | "list"
    items: tuple["Value", ...]

    def __post_init__(self) -> None:
        if self.kind not in ("tuple", "list"):
            raise ValueError(f"Build kind must be 'tuple' or 'list', not {self.kind!r}")

    def __repr__(self) -> str:
        return f"Build({self.kind}, {list(self.items)!r})"


@dataclass(frozen=True)
class Call:
    function: "Value"
    args: tuple["Value", ...] = ()

    def __repr__(self) -> str:
        return f"Call({self.function!r}, {list(self.args)!r})"


@dataclass(frozen=True)
class Null:
    def __repr__(self) -> str:
        return "Null()"


@dataclass(frozen=True)
class WithExit:
    context: "Value"  # the context manager object; its __enter__ is called again to re-create the exit

    def __repr__(self) -> str:
        return f"WithExit({self.context!r})"


Value = Union[GraphOutput, Constant, Local, Build, Call]
StackItem = Union[Value, Null, WithExit]


class SlotKind(enum.Enum):
    """What a resume function's prologue puts in one stack slot."""
    VALUE = "value"   # an argument, pushed as is
    NULL = "null"     # PUSH_NULL; no argument
    WITH = "with"     # argument is a context manager: BEFORE_WITH re-enters it, leaving its __exit__

    def __repr__(self) -> str:
        return self.name


def slot_kind(item: StackItem) -> SlotKind:
    if isinstance(item, Null):
        return SlotKind.NULL
    if isinstance(item, WithExit):
        return SlotKind.WITH
    return SlotKind.VALUE
