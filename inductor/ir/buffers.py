"""Buffer-level IR: what the scheduler sees. Every realized tensor is a Buffer."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from kiln.prims.symbolic import SizeExpr

from .index import Sym, strided_index
from .loop import LoopNode, ReductionType, format_body


@dataclass(frozen=True)
class Layout:
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    dtype: torch.dtype
    device: torch.device
    offset: int = 0

    def storage_size(self) -> int:
        if any(s == 0 for s in self.shape):
            return 0
        return self.offset + sum((s - 1) * st for s, st in zip(self.shape, self.strides)) + 1

    def index(self, idx):
        return strided_index(idx, self.strides, self.offset)

    def __repr__(self):
        return f"{str(self.dtype).replace('torch.', '')}{list(self.shape)} strides={list(self.strides)}"


def loop_syms(prefix: str, shape) -> tuple[Sym, ...]:
    return tuple(Sym(f"{prefix}{d}", s if isinstance(s, SizeExpr) else int(s)) for d, s in enumerate(shape))


@dataclass(frozen=True)
class Pointwise:
    """out[i] = body, for i over `ranges` (body's Syms are i0, i1, ...). Loop k walks the buffer's
    dim `order[k]` (default: dims in order), so a buffer with a permuted layout is written in
    memory order."""
    ranges: tuple[int, ...]
    body: LoopNode
    order: tuple[int, ...] | None = None

    def syms(self):
        return loop_syms("i", self.ranges)

    def index(self) -> tuple:
        """The buffer's index per dim, in the loop variables."""
        syms = self.syms()
        if self.order is None:
            return syms
        idx = [0] * len(syms)
        for k, d in enumerate(self.order):
            idx[d] = syms[k]
        return tuple(idx)


@dataclass(frozen=True)
class Reduction:
    """out[i] = reduce(body over r), i over `ranges`, r over `reduction_ranges` (Syms i*, r*)."""
    ranges: tuple[int, ...]
    reduction_ranges: tuple[int, ...]
    reduction_type: ReductionType
    body: LoopNode

    def syms(self):
        return loop_syms("i", self.ranges)

    def rsyms(self):
        return loop_syms("r", self.reduction_ranges)


@dataclass(eq=False)
class Buffer:
    name: str
    layout: Layout

    def reads(self) -> set[str]:
        return set()


@dataclass(eq=False)
class InputBuffer(Buffer):
    index: int = 0  # position among the graph's inputs


@dataclass(eq=False)
class ConstantBuffer(Buffer):
    value: torch.Tensor = None


@dataclass(eq=False)
class ComputedBuffer(Buffer):
    data: Pointwise | Reduction = None

    def reads(self) -> set[str]:
        from .loop import LOADS, walk

        return {n.attr[0] for n in walk(self.data.body) if n.op in LOADS}

    def store_index(self):
        data = self.data
        return self.layout.index(data.index() if isinstance(data, Pointwise) else data.syms())

    def __repr__(self):
        d = self.data
        head = f"{self.name}: {self.layout} = "
        if isinstance(d, Reduction):
            head += f"{d.reduction_type.value} over r{list(d.reduction_ranges)} for i{list(d.ranges)}: "
        else:
            head += f"pointwise i{list(d.ranges)}: "
        return head + format_body(d.body)


@dataclass(frozen=True)
class TensorArg:
    """An extern call's tensor argument: a strided view of a buffer."""
    buffer: str
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    offset: int

    def __repr__(self):
        return f"{self.buffer}[{list(self.shape)}:{list(self.strides)}+{self.offset}]"


@dataclass(eq=False)
class ExternBuffer(Buffer):
    """Computed by a library call: `kind` is 'matmul', 'extern' (an extern prim's reference, calling
    ATen) or 'fallback' (an ATen op run as is). A call with several results makes one buffer per
    result: the first runs the call (`outputs` names them all), the others name it as `source`."""
    kind: str = ""
    args: tuple = ()  # TensorArgs and plain Python values
    kwargs: dict = field(default_factory=dict)
    op: Any = None  # the callable: the ATen overload or the extern prim
    outputs: tuple = ()  # several results: every result's buffer name (None for non-tensors)
    source: str | None = None  # a later result of a call that `source`'s buffer runs

    def reads(self) -> set[str]:
        got = {a.buffer for a in _flat(self.args) + _flat(list(self.kwargs.values())) if isinstance(a, TensorArg)}
        return got | ({self.source} if self.source else set())

    def __repr__(self):
        if self.source:
            return f"{self.name}: {self.layout} = a result of {self.source}"
        what = self.op if self.kind in ("fallback", "extern") else self.kind
        return f"{self.name}: {self.layout} = extern {what}({', '.join(map(repr, self.args))})"


def _flat(xs):
    out = []
    for x in xs:
        if isinstance(x, (list, tuple)):
            out.extend(_flat(x))
        else:
            out.append(x)
    return out
