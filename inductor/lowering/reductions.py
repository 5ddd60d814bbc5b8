"""Reduction prims -> Reduction buffers (always realized; their inputs are inlined into the body)."""
from __future__ import annotations

import torch

from kiln.prims.symbolic import is_symbolic, size_hint
from ..ir.buffers import ComputedBuffer, Reduction, loop_syms
from ..ir import loop as L
from ..ir.index import affine
from ..ir.loop import LoopOp, ReductionType
from . import pointwise
from .registry import lowers
from .value import TensorValue

KINDS = {
    "sum": ReductionType.SUM, "prod": ReductionType.PROD, "amax": ReductionType.MAX, "amin": ReductionType.MIN,
    "argmax": ReductionType.ARGMAX, "argmin": ReductionType.ARGMIN,
}


def _reduce(graph, name, x, dims):
    dims = tuple(dims) if x.ndim else ()
    kept = tuple(s for d, s in enumerate(x.shape) if d not in dims)
    reduced = tuple(x.shape[d] for d in dims)
    kind = KINDS[name]
    if _numel(reduced) == 1:  # one element per row: no loop, the element itself (or index 0)
        if kind in (ReductionType.ARGMAX, ReductionType.ARGMIN):
            return pointwise.full(graph, kept, 0, dtype=torch.int64, device=x.device)

        def first(idx):
            it = iter(idx)
            return x.loader(tuple(0 if d in dims else next(it) for d in range(x.ndim)))

        return TensorValue(kept, x.dtype, x.device, first, cost=x.cost)
    isyms, rsyms = loop_syms("i", kept), loop_syms("r", reduced)
    it, rt = iter(isyms), iter(rsyms)
    idx = tuple(next(rt) if d in dims else next(it) for d in range(x.ndim))
    dtype = torch.int64 if kind in (ReductionType.ARGMAX, ReductionType.ARGMIN) else x.dtype
    body = x.loader(idx)
    if kind is ReductionType.MAX and x.dtype == torch.bool:
        kind = ReductionType.ANY
    elif kind is ReductionType.SUM:
        body, kind = _welford(graph, body, isyms, rsyms) or (body, kind)
    return graph.realize_reduction(Reduction(kept, reduced, kind, body), dtype, x.device)


# var's sum of squared deviations is computed in one pass (Welford) instead of a second pass over
# x when that pass would not find x in cache: reductions at least this long, or strided ones.
WELFORD_MIN = 1 << 16


def _welford(graph, body, isyms, rsyms):
    """sum((x - sum(x) / n) ** 2) over the same range -> (x, WELFORD) when one pass pays; else None."""
    reduced = tuple(s.extent for s in rsyms)
    if body.op is not LoopOp.MUL or body.args[0] is not body.args[1] and body.args[0] != body.args[1]:
        return None
    d = body.args[0]
    if d.op is not LoopOp.SUB or d.args[1].op is not LoopOp.TRUEDIV:
        return None
    x, (total, count) = d.args[0], d.args[1].args
    n = _numel(reduced)
    if total.op is not LoopOp.LOAD or count.op is not LoopOp.CONSTANT or \
            count.attr != (n if is_symbolic(n) else float(n)):
        return None
    buf = graph.buffers.get(total.attr[0])
    if not (isinstance(buf, ComputedBuffer) and isinstance(buf.data, Reduction) and buf.data.body == x
            and buf.data.reduction_type is ReductionType.SUM and buf.data.reduction_ranges == reduced
            and total.attr[1] == buf.layout.index(isyms)):
        return None
    if size_hint(n) < WELFORD_MIN and all(_contiguous_in(n.attr[1], rsyms[-1]) for n in L.walk(x)
                                               if n.op is LoopOp.LOAD):
        return None  # each row is read twice from cache: two passes are cheaper than Welford's updates
    return x, ReductionType.WELFORD


def _contiguous_in(index, sym) -> bool:
    return dict(affine(index).terms).get(sym, 0) in (0, 1)


def _numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


for _name in KINDS:
    lowers(_name)(lambda graph, x, dims, _name=_name: _reduce(graph, _name, x, dims))
