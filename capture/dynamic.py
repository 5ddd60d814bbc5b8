"""Which sizes are symbolic: `dynamic=`, `mark_dynamic`/`mark_static`, and automatic dynamic.

As in TorchDynamo: `dynamic=True` makes every tensor dim (and int argument) symbolic, and lifts
every float argument to a graph input, from the first compile; `dynamic=False` none (one static graph per shape); `dynamic=None` starts static and,
per code object, makes symbolic the dims, ints and floats a later trace sees with another value
than an earlier one (TorchDynamo's frame_state / automatic_dynamic_shapes). Markings on a tensor
(`_dynamo_dynamic_indices` / `_dynamo_static_indices`, what torch._dynamo.mark_dynamic sets, and
maybe_mark_dynamic's `_dynamo_weak_dynamic_indices`) win; mark_dynamic's min/max are not kept.
A dim of size 0 or 1 is never symbolic: the ShapeEnv specialises it (guards then keep it).
"""
from __future__ import annotations

import math
import types
from dataclasses import dataclass, field

import torch
from torch._guards import GuardSource
from torch._guards import Source as TorchSource

from kiln.logs import get_logger

from .sources import GetItemSource, LocalSource, Source

recompiles_log = get_logger("recompiles")


@dataclass(frozen=True)
class ShapeSource(TorchSource):
    """A Kiln source as the ShapeEnv wants one: its `name` is the source's expression over
    L, G, B, C, so the guards the ShapeEnv prints (`L['x'].size()[0] >= 2`) run as they are."""
    kiln: Source

    @property
    def _name_template(self) -> str:
        return self.kiln.expr()

    @property
    def guard_source(self) -> GuardSource:
        return GuardSource.LOCAL


def mark_dynamic(tensor: torch.Tensor, dim) -> None:
    """Make `dim` (an int or several) of `tensor` symbolic wherever it is compiled."""
    _mark(tensor, "_dynamo_dynamic_indices", dim)


def mark_static(tensor: torch.Tensor, dim=None) -> None:
    """Keep `dim` (all dims when None) of `tensor` static, even under dynamic=True."""
    _mark(tensor, "_dynamo_static_indices", range(tensor.dim()) if dim is None else dim)


def _mark(tensor: torch.Tensor, attribute: str, dims) -> None:
    dims = [dims] if isinstance(dims, int) else list(dims)
    marked = getattr(tensor, attribute, None)
    if marked is None:
        marked = set()
        setattr(tensor, attribute, marked)
    marked.update(dim % max(tensor.dim(), 1) for dim in dims)


@dataclass
class FrameState:
    """What earlier traces of one code object saw: sizes per tensor source (None where a dim
    changed) and values per int or float source (None once changed)."""
    sizes: dict[Source, list[int | None]] = field(default_factory=dict)
    ints: dict[Source, int | float | None] = field(default_factory=dict)


_STATES: dict[types.CodeType, FrameState] = {}


def state_for(code: types.CodeType) -> FrameState:
    return _STATES.setdefault(code, FrameState())


def clear() -> None:
    _STATES.clear()


class DynamicPolicy:
    """Answers, during one trace, which dims of a tensor input and which int inputs are symbolic."""

    def __init__(self, dynamic: bool | None, state: FrameState | None, honour_marks: bool = True):
        self.dynamic, self.state, self.honour_marks = dynamic, state, honour_marks

    def tensor_dims(self, source: Source, tensor: torch.Tensor) -> set[int]:
        shape = tuple(tensor.shape)
        if not self.honour_marks:  # (DDP's split graphs stay static)
            return set()
        marked = set(getattr(tensor, "_dynamo_dynamic_indices", ())) | set(
            getattr(tensor, "_dynamo_weak_dynamic_indices", ()))  # (torch._dynamo.maybe_mark_dynamic)
        static = set(getattr(tensor, "_dynamo_static_indices", ()))
        if self.dynamic is True:
            dims = set(range(len(shape)))
        elif self.dynamic is None and self.state is not None:
            dims = self._changed_dims(source, shape)
        else:
            dims = set()
        return {dim for dim in (dims - static) | marked if dim < len(shape) and shape[dim] not in (0, 1)}

    def _changed_dims(self, source: Source, shape: tuple) -> set[int]:
        seen = self.state.sizes.get(source)
        if seen is None or len(seen) != len(shape):  # first sight (or another rank): static
            self.state.sizes[source] = list(shape)
            return set()
        for dim, (before, now) in enumerate(zip(seen, shape)):
            if before is not None and before != now:
                recompiles_log.debug("automatic dynamic: %s size dim %d changed %d -> %d: symbolic from now on",
                                     source.name(), dim, before, now)
                seen[dim] = None
        return {dim for dim, size in enumerate(seen) if size is None}

    def may_be_dynamic(self, source: Source) -> bool:
        """Whether ints read through `source` can be symbolic: arguments and items of arguments
        (module attributes and globals stay constants, as in TorchDynamo)."""
        while isinstance(source, GetItemSource):
            source = source.base
        return isinstance(source, LocalSource) and self.dynamic is not False and self.honour_marks

    def int_is_dynamic(self, source: Source, value: int) -> bool:
        if value in (0, 1):
            return False
        return self._number_is_dynamic(source, value)

    def float_is_dynamic(self, source: Source, value: float) -> bool:
        """A float argument is lifted to a graph input (a 0-dim float64 tensor) once it changed
        (or from the start under dynamic=True), as TorchDynamo's specialize_float=False; inf and
        NaN stay constants."""
        if not math.isfinite(value):
            return False
        return self._number_is_dynamic(source, value)

    def _number_is_dynamic(self, source: Source, value) -> bool:
        if not self.may_be_dynamic(source):
            return False
        if self.dynamic is True:
            return True
        if self.state is None:
            return False
        seen = self.state.ints.setdefault(source, value)
        if seen is not None and seen != value:
            recompiles_log.debug("automatic dynamic: %s %s changed %r -> %r: symbolic from now on",
                                 type(value).__name__, source.name(), seen, value)
            self.state.ints[source] = seen = None
        return seen is None
