"""Reduction prims -> Reduction buffers (always realized; their inputs are inlined into the body)."""
from __future__ import annotations

import torch

from ..ir.buffers import Reduction, loop_syms
from ..ir.loop import ReductionType
from .registry import lowers

KINDS = {
    "sum": ReductionType.SUM, "prod": ReductionType.PROD, "amax": ReductionType.MAX, "amin": ReductionType.MIN,
    "argmax": ReductionType.ARGMAX, "argmin": ReductionType.ARGMIN,
}


def _reduce(graph, name, x, dims):
    dims = tuple(dims)
    if x.ndim == 0:
        dims = ()
    kept = tuple(s for d, s in enumerate(x.shape) if d not in dims)
    reduced = tuple(x.shape[d] for d in dims)
    isyms, rsyms = loop_syms("i", kept), loop_syms("r", reduced)
    it, rt = iter(isyms), iter(rsyms)
    idx = tuple(next(rt) if d in dims else next(it) for d in range(x.ndim))
    kind = KINDS[name]
    dtype = torch.int64 if kind in (ReductionType.ARGMAX, ReductionType.ARGMIN) else x.dtype
    if not dims and kind in (ReductionType.ARGMAX, ReductionType.ARGMIN):
        from . import pointwise as pw

        return pw.full(graph, kept, 0, dtype=torch.int64, device=x.device)
    if not dims:
        return x
    return graph.realize_reduction(Reduction(kept, reduced, kind, x.loader(idx)), dtype, x.device)


for _name in KINDS:
    lowers(_name)(lambda graph, x, dims, _name=_name: _reduce(graph, _name, x, dims))
