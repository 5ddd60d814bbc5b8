"""Plans: how a cache entry rebuilds Python values and replays side effects around a graph.

Data only: frozen dataclasses built when a trace finishes (output_graph.py, side_effects.py,
breaks.py) and run on every call of the compiled function. They know sources and the graph's
outputs, never the symbolic values they were planned from.
"""
from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import Any

import torch

from .sources import Frame, Source, fetcher


# -- how to rebuild the function's return value from the graph outputs --------------------------

class OutputPlan:
    def build(self, graph_outputs, frame: Frame) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class FromGraph(OutputPlan):
    index: int

    def build(self, graph_outputs, frame):
        return graph_outputs[self.index]

    def __repr__(self) -> str:
        return f"graph_out[{self.index}]"


@dataclass(frozen=True)
class FromSource(OutputPlan):
    """A value the function read and returned unchanged: the very same object."""
    source: Source

    def __post_init__(self) -> None:
        object.__setattr__(self, "_fetch", fetcher(self.source))

    def build(self, graph_outputs, frame):
        return self._fetch(frame.L, frame.G, frame.B, frame.C)

    def __repr__(self) -> str:
        return self.source.expr()


@dataclass(frozen=True)
class Constant(OutputPlan):
    value: Any

    def build(self, graph_outputs, frame):
        return self.value

    def __repr__(self) -> str:
        return repr(self.value)


@dataclass(frozen=True)
class Rebuild(OutputPlan):
    container_type: type  # tuple, list, or a torch.return_types structseq
    items: tuple[OutputPlan, ...]

    def build(self, graph_outputs, frame):
        make = getattr(self.container_type, "_make", self.container_type)  # namedtuples: _make
        return make([item.build(graph_outputs, frame) for item in self.items])

    def __repr__(self) -> str:
        items = ", ".join(map(repr, self.items))
        if self.container_type is list:
            return f"[{items}]"
        return f"({items}{',' if len(self.items) == 1 else ''})" if self.container_type is tuple else \
            f"{self.container_type.__name__}({items})"


@dataclass(frozen=True)
class RebuildDict(OutputPlan):
    dict_type: type
    keys: tuple
    values: tuple[OutputPlan, ...]

    def build(self, graph_outputs, frame):
        return self.dict_type(zip(self.keys, (value.build(graph_outputs, frame) for value in self.values)))


@dataclass(frozen=True)
class RebuildSet(OutputPlan):
    items: frozenset

    def build(self, graph_outputs, frame):
        return set(self.items)


@dataclass(frozen=True)
class RebuildObject(OutputPlan):
    """An instance of a plain class built in the function: made without __init__, then its
    attributes set, as the traced __init__ left them."""
    cls: type
    names: tuple[str, ...]
    values: tuple[OutputPlan, ...]

    def build(self, graph_outputs, frame):
        obj = object.__new__(self.cls)
        obj.__dict__.update(zip(self.names, (value.build(graph_outputs, frame) for value in self.values)))
        return obj


# A mutable container built in the function and returned twice (`return xs, xs`, a dict holding
# the same list under two keys) is rebuilt once and then shared, as eager shares it.
_BUILD_MEMO = threading.local()


@contextlib.contextmanager
def aliases():
    """One memo for Remember/Recall while a return value (and its side effects) are built."""
    saved = getattr(_BUILD_MEMO, "values", None)
    _BUILD_MEMO.values = {}
    try:
        yield
    finally:
        _BUILD_MEMO.values = saved


def alias_memo() -> dict:
    """The memo of the build in progress (inside `aliases()`): Remember/Recall use int keys;
    other plans that must build one object per build (breaks.MakeCell) use their own keys."""
    return _BUILD_MEMO.values


@dataclass(frozen=True)
class WithAliases(OutputPlan):
    plan: OutputPlan

    def build(self, graph_outputs, frame):
        with aliases():
            return self.plan.build(graph_outputs, frame)


@dataclass(frozen=True)
class Remember(OutputPlan):
    slot: int
    plan: OutputPlan

    def build(self, graph_outputs, frame):
        value = _BUILD_MEMO.values[self.slot] = self.plan.build(graph_outputs, frame)
        return value


@dataclass(frozen=True)
class Recall(OutputPlan):
    slot: int

    def build(self, graph_outputs, frame):
        return _BUILD_MEMO.values[self.slot]


# -- how to replay side effects after the graph (side_effects.py records them) -------------------

class Step:
    def stage(self, graph_outputs, frame) -> tuple:
        """Fetch targets and build values (no mutation yet)."""
        raise NotImplementedError

    def apply(self, *staged) -> None:
        raise NotImplementedError


def _fetch(source: Source, frame):
    return fetcher(source)(frame.L, frame.G, frame.B, frame.C)


def _describe(plan) -> str:
    return "<deleted>" if plan is None else repr(plan)


@dataclass(frozen=True)
class ReplaceContents(Step):
    target: Source
    items: OutputPlan

    def stage(self, graph_outputs, frame):
        return _fetch(self.target, frame), self.items.build(graph_outputs, frame)

    def apply(self, target, items):
        target[:] = items

    def __repr__(self) -> str:
        return f"{self.target.expr()}[:] = {self.items!r}"


@dataclass(frozen=True)
class ReplaceDict(Step):
    target: Source
    items: OutputPlan  # a RebuildDict of the final keys and values

    def stage(self, graph_outputs, frame):
        return _fetch(self.target, frame), self.items.build(graph_outputs, frame)

    def apply(self, target, items):
        target.clear()
        target.update(items)

    def __repr__(self) -> str:
        return f"{self.target.expr()}.clear(); {self.target.expr()}.update({self.items!r})"


@dataclass(frozen=True)
class SetAttr(Step):
    target: Source
    name: str
    value: OutputPlan | None

    def stage(self, graph_outputs, frame):
        value = None if self.value is None else self.value.build(graph_outputs, frame)
        return _fetch(self.target, frame), value

    def apply(self, target, value):
        if self.value is None:
            delattr(target, self.name)
        else:
            setattr(target, self.name, value)

    def __repr__(self) -> str:
        return f"{self.target.expr()}.{self.name} = {_describe(self.value)}"


@dataclass(frozen=True)
class SetItem(Step):
    target: Source
    name: str
    value: OutputPlan | None

    def stage(self, graph_outputs, frame):
        value = None if self.value is None else self.value.build(graph_outputs, frame)
        return _fetch(self.target, frame), value

    def apply(self, target, value):
        if self.value is None:
            del target[self.name]
        else:
            target[self.name] = value

    def __repr__(self) -> str:
        return f"{self.target.expr()}[{self.name!r}] = {_describe(self.value)}"


@dataclass(frozen=True)
class SetGradMode(Step):
    mode: bool

    def stage(self, graph_outputs, frame):
        return ()

    def apply(self):
        torch._C._set_grad_enabled(self.mode)

    def __repr__(self) -> str:
        return f"torch._C._set_grad_enabled({self.mode})"


@dataclass(frozen=True)
class EffectsPlan:
    steps: tuple[Step, ...]

    def run(self, return_plan: OutputPlan, graph_outputs, frame):
        """Build the return value, then replay: one alias memo for both (`aliases`)."""
        with aliases():
            result = return_plan.build(graph_outputs, frame)
            staged = [step.stage(graph_outputs, frame) for step in self.steps]
        for step, values in zip(self.steps, staged):
            step.apply(*values)
        return result

    def __repr__(self) -> str:
        return "\n".join(repr(step) for step in self.steps)
