"""Side effects on Python state made while tracing, replayed after the graph runs.

Tensor mutations (`x.add_(1)`, `x[0] = v`, `out=`) are ops in the fx graph: the graph runs
them on the real tensors, in order. Everything else a function changes — list contents,
attributes of modules and plain objects, globals, the global grad mode — cannot live in a
graph, so the tracer records it in a `SideEffects` table (one per OutputGraph) and the cache
entry replays it right after the graph returns, as an `EffectsPlan` (plans.py):

1. stage: fetch every target and build every stored value from the state at call start and
   the graph's outputs (the return value is built first, sharing one alias memo, so one traced
   object is one Python object everywhere: eager's identity and aliasing);
2. lists and dicts read from outside get their final contents (`lst[:] = [...]`,
   `d.clear(); d.update(...)`);
3. attribute and global writes run in program order (a store after a store to the same name
   only updates the value; a delete stays a separate step);
4. the grad mode is set to where the function left it.

Reads after writes see the pending value (`read`). At a graph break (capture/breaks.py) the
same plan is built and replayed before the unsupported instruction runs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from .plans import EffectsPlan, OutputPlan, SetAttr, SetGradMode, SetItem, Step
from .sources import AttrSource, Source

if TYPE_CHECKING:
    from .variables.base import VariableTracker


@dataclass
class Write:
    """`setattr(target, name, value)` (kind "attr") or `target[name] = value` (kind "item",
    for globals dicts); value None means delete."""
    target: Source
    name: str
    value: "VariableTracker | None"
    kind: str = "attr"


class SideEffects:
    def __init__(self) -> None:
        self.mutated_containers: dict[int, VariableTracker] = {}  # id(variable) -> list/dict read from outside
        self.writes: list[Write] = []
        self.written_objects: dict[int, VariableTracker] = {}  # objects whose attributes were written
        self._latest: dict[tuple[int, str], Write] = {}       # (id(object), name) -> its last write
        self._alive: list[Any] = []                           # keeps ids in _latest valid
        self.final_grad_mode: bool | None = None

    def __bool__(self) -> bool:
        return bool(self.mutated_containers or self.writes or self.final_grad_mode is not None)

    # -- recording --
    def mutate_container(self, variable: "VariableTracker") -> None:
        """Called before a list's or dict's symbolic items change. One made inside the function
        needs no record: it is rebuilt from its final items wherever it ends up. One read from
        outside must provide `write_back(plan_value) -> Step`."""
        if variable.source is not None:
            self.mutated_containers.setdefault(id(variable), variable)

    def write(self, obj: Any, target: Source, name: str, value: "VariableTracker | None", *,
              kind: str = "attr", owner: "VariableTracker | None" = None) -> None:
        """Record `obj.name = value` (or its deletion) where `obj` is fetched from `target`."""
        key = (id(obj), name)
        last = self._latest.get(key)
        if last is None and kind == "attr" and value is not None and value.source == AttrSource(target, name):
            return  # `obj.x = obj.x` (e.g. after `obj.buf += 1` on a tensor): nothing changes
        if last is not None and last.value is not None and value is not None:
            # Store after store: keep the first position, take the last value. Setting one
            # name never touches another (stores that could are refused at trace time).
            last.value = value
            return
        entry = Write(target, name, value, kind)
        self.writes.append(entry)
        self._latest[key] = entry
        self._alive.append(obj)
        if owner is not None:
            self.written_objects.setdefault(id(owner), owner)

    def read(self, obj: Any, name: str) -> Write | None:
        """The pending write to `obj.name` (or `obj[name]` for globals), if any."""
        return self._latest.get((id(obj), name))

    def mutated_variables(self) -> list["VariableTracker"]:
        return [*self.mutated_containers.values(), *self.written_objects.values()]

    # -- finishing --
    def stored_values(self) -> list["VariableTracker"]:
        """Every value the replay rebuilds (for counting shared containers before planning)."""
        values = [item for variable in self.mutated_containers.values() for item in variable.replayed_items()]
        return values + [write.value for write in self.writes if write.value is not None]

    def plan(self, plan_value: Callable[["VariableTracker"], OutputPlan]) -> "EffectsPlan | None":
        """The replay steps; `plan_value` turns a variable into an OutputPlan (adding graph
        outputs for tensors made in the graph)."""
        if not self:
            return None
        steps: list[Step] = [variable.write_back(plan_value) for variable in self.mutated_containers.values()]
        for write in self.writes:
            value = None if write.value is None else plan_value(write.value)
            steps.append(SetAttr(write.target, write.name, value) if write.kind == "attr"
                         else SetItem(write.target, write.name, value))
        if self.final_grad_mode is not None:
            steps.append(SetGradMode(self.final_grad_mode))
        return EffectsPlan(tuple(steps))
