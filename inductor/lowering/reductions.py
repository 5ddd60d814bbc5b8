"""Reduction prims -> Reduction buffers (always realized; their inputs are inlined into the body)."""
from __future__ import annotations

import torch

from ..ir.buffers import Reduction, loop_syms
from ..ir.loop import ReductionType
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
    return graph.realize_reduction(Reduction(kept, reduced, kind, x.loader(idx)), dtype, x.device)


def _numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


for _name in KINDS:
    lowers(_name)(lambda graph, x, dims, _name=_name: _reduce(graph, _name, x, dims))
